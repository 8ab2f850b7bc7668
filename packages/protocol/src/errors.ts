/**
 * Typed errors. Untrusted input never throws out of `classify`; these errors are for the
 * local API (a malformed invitation string, an unknown conversation id, an oversized frame).
 * Messages never contain key material.
 */
export type UmbraErrorCode =
  | 'invitation-malformed'
  | 'invitation-bad-signature'
  | 'invitation-expired'
  | 'invitation-unsupported-version'
  | 'unknown-conversation'
  | 'frame-too-large'
  | 'conversation-cannot-send'
  | 'state-malformed'
  | 'state-unsupported-version'
  | 'invalid-argument';

export class UmbraError extends Error {
  readonly code: UmbraErrorCode;
  constructor(code: UmbraErrorCode, message: string) {
    super(message);
    this.name = 'UmbraError';
    this.code = code;
  }
}
