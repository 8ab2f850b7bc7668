/**
 * Typed errors of the client SDK. Every public method throws a ClientError (never a bare Error)
 * for a failure the caller can cause or must handle; `code` is stable, `message` is for humans
 * and never contains key material. Protocol errors (UmbraError) are mapped to the same codes.
 */
import { UmbraError, type HandshakeRefusalReason } from '@umbra/protocol';

export type ClientErrorCode =
  | 'invalid-argument'
  | 'invitation-malformed'
  | 'invitation-bad-signature'
  | 'invitation-expired'
  | 'invitation-unsupported-version'
  | 'invitation-own'
  | 'unknown-conversation'
  | 'conversation-denied'
  | 'conversation-refused'
  | 'conversation-cannot-send'
  | 'message-too-large'
  | 'wrong-passphrase'
  | 'store-locked'
  | 'store-corrupt'
  | 'store-unsupported-version'
  | 'store-closed'
  | 'client-closed'
  | 'delivery-failed'
  | 'internal';

export class ClientError extends Error {
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClientError';
    this.code = code;
  }
}

/** Why the inviter refused our first contact, in words for the app's user (SDK errors, the CLI, the web app). */
export function refusalReasonText(reason: HandshakeRefusalReason): string {
  return reason === 'invitation-used' ? 'the invitation had already been used by someone else' : 'the invitation had expired';
}

/** Map anything thrown below the facade to a ClientError (UmbraError codes keep their meaning). */
export function toClientError(e: unknown): ClientError {
  if (e instanceof ClientError) return e;
  if (e instanceof UmbraError) {
    switch (e.code) {
      case 'invitation-malformed':
      case 'invitation-bad-signature':
      case 'invitation-expired':
      case 'invitation-unsupported-version':
      case 'unknown-conversation':
      case 'conversation-cannot-send':
      case 'invalid-argument':
        return new ClientError(e.code, e.message, { cause: e });
      case 'frame-too-large':
        return new ClientError('message-too-large', e.message, { cause: e });
      case 'state-malformed':
        return new ClientError('store-corrupt', e.message, { cause: e });
      case 'state-unsupported-version':
        return new ClientError('store-unsupported-version', e.message, { cause: e });
    }
  }
  return new ClientError('internal', e instanceof Error ? e.message : String(e), { cause: e });
}
