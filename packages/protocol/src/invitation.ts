/**
 * Invitations ("intro bundles"): what one person hands another to start a relationship.
 * String form: "umbra_chatintro_1_" + base64url(SignedInvitation), also rendered as a QR code.
 * A reusable invitation has no one-time prekey; a single-use one has one, consumed exactly once.
 */
import type { CryptoProvider, KeyPair } from './crypto/provider.ts';
import { concat, fromBase64Url, toBase64Url, toHex } from './bytes.ts';
import { UmbraError } from './errors.ts';
import { LABEL_INBOX_HINT, LABEL_INBOX_ROUTE, LABEL_INVITATION, LABEL_SAFETY_NUMBER } from './labels.ts';
import {
  DeliveryEndpointSchema,
  InvitationSchema,
  PresentationSchema,
  SignedInvitationSchema,
  MAX_AVATAR_BYTES,
  MAX_ENDPOINTS,
  MAX_NAME_CHARS,
  create,
  decodeInvitation,
  decodeSignedInvitation,
  toBinary,
  type DeliveryEndpoint,
} from './wire/codec.ts';

export const INVITATION_PREFIX = 'umbra_chatintro_1_';
export const INVITATION_VERSION = 1;
export const INVITATION_ID_BYTES = 16;
export const ML_KEM_768_PUBLIC_KEY_BYTES = 1184;

export interface Presentation {
  readonly name: string;
  readonly avatar?: Uint8Array;
}

/** The secrets behind an invitation (or the default inbox): everything needed to answer it. */
export interface Inbox {
  readonly invitationId: Uint8Array;
  readonly identity: KeyPair; // Ed25519
  readonly signedPrekeyId: number;
  readonly signedPrekey: KeyPair; // X25519
  readonly oneTimePrekeyId: number; // 0 = reusable
  readonly oneTimePrekey: KeyPair | null; // null for reusable invitations, and once consumed
  readonly oneTimePrekeyConsumed: boolean;
  readonly kemPrekeyId: number;
  readonly kemPrekey: KeyPair; // ML-KEM-768
  readonly expiresAt: number; // unix seconds, 0 = never
  readonly isDefaultInbox: boolean;
  readonly signedInvitation: Uint8Array;
}

/** A parsed, verified invitation. */
export interface ParsedInvitation {
  readonly invitationId: Uint8Array;
  readonly identityKey: Uint8Array;
  readonly signedPrekeyId: number;
  readonly signedPrekey: Uint8Array;
  readonly oneTimePrekeyId: number;
  readonly oneTimePrekey: Uint8Array | null;
  readonly kemPrekeyId: number;
  readonly kemPrekey: Uint8Array;
  readonly endpoints: readonly DeliveryEndpoint[];
  readonly presentation: Presentation;
  readonly expiresAt: number;
}

/** The default-inbox route: inbox_address = HASH(client address), lowercase hex SHA-256. */
export function inboxRoute(crypto: CryptoProvider, identityKey: Uint8Array): string {
  return toHex(crypto.sha256(concat(LABEL_INBOX_ROUTE, identityKey)));
}

/** The static conversation_hint of envelopes addressed to an inbox. */
export function inboxHint(crypto: CryptoProvider, identityKey: Uint8Array): string {
  return toHex(crypto.sha256(concat(LABEL_INBOX_HINT, identityKey)).subarray(0, 16));
}

export interface CreateInvitationOptions {
  readonly nowMs: number;
  /** Reusable invitations can be answered by many people; single-use ones once. */
  readonly reusable: boolean;
  /** Lifetime in seconds; 0 = never expires (only sensible for the default inbox). */
  readonly ttlSeconds: number;
  readonly presentation: Presentation;
  /** Where answers should be delivered. Defaults to this invitation's inbox route. */
  readonly endpoints?: readonly DeliveryEndpoint[];
  /** Use this identity (the account key, for the default inbox) instead of a fresh one. */
  readonly identity?: KeyPair;
  readonly isDefaultInbox?: boolean;
}

function checkPresentation(p: Presentation): void {
  if (p.name.length > MAX_NAME_CHARS) throw new UmbraError('invalid-argument', `name longer than ${MAX_NAME_CHARS} characters`);
  if (p.avatar !== undefined && p.avatar.length > MAX_AVATAR_BYTES) {
    throw new UmbraError('invalid-argument', `avatar larger than ${MAX_AVATAR_BYTES} bytes`);
  }
}

export function createInvitation(crypto: CryptoProvider, options: CreateInvitationOptions): { inbox: Inbox; text: string } {
  checkPresentation(options.presentation);
  const identity = options.identity ?? crypto.ed25519Generate();
  const invitationId = crypto.randomBytes(INVITATION_ID_BYTES);
  const signedPrekey = crypto.x25519Generate();
  const oneTimePrekey = options.reusable ? null : crypto.x25519Generate();
  const kemPrekey = crypto.mlKem768Generate();
  const expiresAt = options.ttlSeconds > 0 ? Math.floor(options.nowMs / 1000) + options.ttlSeconds : 0;
  const endpoints = options.endpoints ?? [
    create(DeliveryEndpointSchema, { endpoint: { case: 'route', value: inboxRoute(crypto, identity.publicKey) } }),
  ];
  if (endpoints.length > MAX_ENDPOINTS) throw new UmbraError('invalid-argument', `more than ${MAX_ENDPOINTS} endpoints`);
  const invitation = toBinary(
    InvitationSchema,
    create(InvitationSchema, {
      version: INVITATION_VERSION,
      invitationId,
      identityKey: identity.publicKey,
      signedPrekeyId: 1,
      signedPrekey: signedPrekey.publicKey,
      oneTimePrekeyId: oneTimePrekey === null ? 0 : 1,
      oneTimePrekey: oneTimePrekey?.publicKey ?? new Uint8Array(0),
      kemPrekeyId: 1,
      kemPrekey: kemPrekey.publicKey,
      endpoints: [...endpoints],
      presentation: create(PresentationSchema, {
        name: options.presentation.name,
        avatar: options.presentation.avatar ?? new Uint8Array(0),
      }),
      expiresAt: BigInt(expiresAt),
    }),
  );
  const signature = crypto.ed25519Sign(identity.secretKey, concat(LABEL_INVITATION, invitation));
  const signedInvitation = toBinary(SignedInvitationSchema, create(SignedInvitationSchema, { invitation, signature }));
  const inbox: Inbox = {
    invitationId,
    identity,
    signedPrekeyId: 1,
    signedPrekey,
    oneTimePrekeyId: oneTimePrekey === null ? 0 : 1,
    oneTimePrekey,
    oneTimePrekeyConsumed: false,
    kemPrekeyId: 1,
    kemPrekey,
    expiresAt,
    isDefaultInbox: options.isDefaultInbox ?? false,
    signedInvitation,
  };
  return { inbox, text: invitationText(signedInvitation) };
}

export function invitationText(signedInvitation: Uint8Array): string {
  return INVITATION_PREFIX + toBase64Url(signedInvitation);
}

/**
 * Parse and verify an invitation string. Throws UmbraError with code invitation-malformed,
 * invitation-unsupported-version, invitation-bad-signature or invitation-expired.
 */
export function parseInvitation(crypto: CryptoProvider, text: string, nowMs: number): ParsedInvitation {
  const trimmed = text.trim();
  if (!trimmed.startsWith(INVITATION_PREFIX)) {
    throw new UmbraError('invitation-malformed', `an invitation starts with "${INVITATION_PREFIX}"`);
  }
  const bytes = fromBase64Url(trimmed.slice(INVITATION_PREFIX.length));
  if (bytes === null) throw new UmbraError('invitation-malformed', 'the invitation is not valid base64url');
  const signed = decodeSignedInvitation(bytes);
  if (signed === null) throw new UmbraError('invitation-malformed', 'the invitation could not be decoded');
  const inv = decodeInvitation(signed.invitation);
  if (inv === null) throw new UmbraError('invitation-malformed', 'the invitation body could not be decoded');
  if (inv.version === 0) throw new UmbraError('invitation-malformed', 'the invitation has no version');
  if (inv.version !== INVITATION_VERSION) {
    throw new UmbraError('invitation-unsupported-version', `invitation version ${inv.version} is not supported`);
  }
  const malformed = (what: string) => new UmbraError('invitation-malformed', `the invitation has ${what}`);
  if (inv.invitationId.length !== INVITATION_ID_BYTES) throw malformed('a bad invitation id');
  if (inv.identityKey.length !== 32) throw malformed('a bad identity key');
  if (inv.signedPrekey.length !== 32) throw malformed('a bad signed prekey');
  if (inv.kemPrekey.length !== ML_KEM_768_PUBLIC_KEY_BYTES) throw malformed('a bad ML-KEM prekey');
  if (inv.oneTimePrekeyId === 0 ? inv.oneTimePrekey.length !== 0 : inv.oneTimePrekey.length !== 32) {
    throw malformed('a bad one-time prekey');
  }
  if (inv.endpoints.length === 0 || inv.endpoints.length > MAX_ENDPOINTS) throw malformed('no usable endpoints');
  if (inv.endpoints.some((e) => e.endpoint.case === undefined)) throw malformed('an empty endpoint');
  const name = inv.presentation?.name ?? '';
  const avatar = inv.presentation?.avatar ?? new Uint8Array(0);
  if (name.length > MAX_NAME_CHARS || avatar.length > MAX_AVATAR_BYTES) throw malformed('an oversized presentation');
  if (!crypto.ed25519Verify(inv.identityKey, concat(LABEL_INVITATION, signed.invitation), signed.signature)) {
    throw new UmbraError('invitation-bad-signature', 'the invitation signature does not verify');
  }
  const expiresAt = Number(inv.expiresAt);
  if (expiresAt !== 0 && expiresAt * 1000 <= nowMs) throw new UmbraError('invitation-expired', 'the invitation has expired');
  return {
    invitationId: inv.invitationId,
    identityKey: inv.identityKey,
    signedPrekeyId: inv.signedPrekeyId,
    signedPrekey: inv.signedPrekey,
    oneTimePrekeyId: inv.oneTimePrekeyId,
    oneTimePrekey: inv.oneTimePrekeyId === 0 ? null : inv.oneTimePrekey,
    kemPrekeyId: inv.kemPrekeyId,
    kemPrekey: inv.kemPrekey,
    endpoints: inv.endpoints,
    presentation: avatar.length > 0 ? { name, avatar } : { name },
    expiresAt,
  };
}

/**
 * Safety number: 60 decimal digits (12 groups of 5) that both sides compute from the two
 * relationship identity keys, in either order; compared out of band (read aloud or by QR).
 *   digest = SHA-256(label ‖ min(key_a, key_b) ‖ max(key_a, key_b)), extended by
 *            SHA-256(digest) to 64 bytes; each group = u40be(5 bytes) mod 100000.
 */
export function safetyNumber(crypto: CryptoProvider, keyA: Uint8Array, keyB: Uint8Array): string {
  const [lo, hi] = compareBytes(keyA, keyB) <= 0 ? [keyA, keyB] : [keyB, keyA];
  const first = crypto.sha256(concat(LABEL_SAFETY_NUMBER, lo, hi));
  const digest = concat(first, crypto.sha256(first));
  const groups: string[] = [];
  for (let g = 0; g < 12; g++) {
    let v = 0;
    for (let k = 0; k < 5; k++) v = v * 256 + digest[g * 5 + k]!;
    groups.push(String(v % 100000).padStart(5, '0'));
  }
  return groups.join(' ');
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
