/**
 * Handshake refusal (docs/PROTOCOL.md §5): the inviter's authenticated "no" to a first contact it
 * cannot take — a single-use invitation already answered, or one that has expired — so the
 * acceptor's client shows that, instead of waiting for an answer that never comes.
 *
 * The inviter may no longer be able to open the first message (a used invitation's one-time
 * prekey is deleted), so the acceptor puts what an answer needs inside the HPKE layer, which the
 * signed prekey opens: a refusal key RK and where to deliver. RK is derived from the acceptor's
 * fresh relationship identity, so it needs no storage and differs per handshake:
 *
 *   RK        = HKDF(ikm = identity secret, salt = invitation_id, info = "umbra/v1/refusal/key")
 *   hint      = hex(HKDF(ikm = RK, salt = ∅, info = "umbra/v1/refusal/hint", 16))
 *   AEAD key  = HKDF(ikm = RK, salt = ∅, info = "umbra/v1/refusal/aead")
 *
 * The body is signed by the invitation's identity key and names the acceptor's identity, so only
 * the inviter can refuse, and a refusal of one handshake is no refusal of another.
 */
import { fromBinary } from '@bufbuild/protobuf';
import type { CryptoProvider, KeyPair } from './crypto/provider.ts';
import { concat, toHex, u32be, utf8 } from './bytes.ts';
import { LABEL_REFUSAL, LABEL_REFUSAL_AEAD, LABEL_REFUSAL_HINT, LABEL_REFUSAL_KEY } from './labels.ts';
import { pad, unpad } from './padding.ts';
import { encode, encodeEncryptedPayload, encodeEnvelope, isReencodedSame } from './wire/codec.ts';
import { RefusalBodySchema, RefusalReason, type HandshakeRefusal, type RefusalBody } from './wire/index.ts';

export const REFUSAL_KEY_BYTES = 32;
/** Most endpoints a first contact may name for its refusal (the inviter delivers to each). */
export const MAX_REFUSAL_ENDPOINTS = 8;
const NONCE_BYTES = 12;
const EMPTY = new Uint8Array(0);

/** Why the inviter refused, in the SDK's words. */
export type HandshakeRefusalReason = 'invitation-used' | 'invitation-expired';

export interface HandshakeRefused {
  readonly reason: HandshakeRefusalReason;
  /** The inviter's clock when it refused (unix ms), as signed. */
  readonly refusedAt: number;
}

const TO_WIRE: Record<HandshakeRefusalReason, RefusalReason> = {
  'invitation-used': RefusalReason.INVITATION_USED,
  'invitation-expired': RefusalReason.INVITATION_EXPIRED,
};

export function refusalReasonFromWire(reason: RefusalReason): HandshakeRefusalReason | null {
  if (reason === RefusalReason.INVITATION_USED) return 'invitation-used';
  if (reason === RefusalReason.INVITATION_EXPIRED) return 'invitation-expired';
  return null;
}

export function refusalReasonToWire(reason: HandshakeRefusalReason): RefusalReason {
  return TO_WIRE[reason];
}

/** The acceptor's refusal key for one first contact (from its relationship identity's secret). */
export function refusalKey(crypto: CryptoProvider, identitySecret: Uint8Array, invitationId: Uint8Array): Uint8Array {
  return crypto.hkdfSha256(identitySecret, invitationId, LABEL_REFUSAL_KEY, REFUSAL_KEY_BYTES);
}

/** The 16 bytes of the refusal hint (an envelope's hint field) for a first contact that carried `key`. */
export function refusalHintBytes(crypto: CryptoProvider, key: Uint8Array): Uint8Array {
  return crypto.hkdfSha256(key, EMPTY, LABEL_REFUSAL_HINT, 16);
}

/** The refusal hint as the engine looks it up (lowercase hex, like every envelope hint). */
export function refusalHint(crypto: CryptoProvider, key: Uint8Array): string {
  return toHex(refusalHintBytes(crypto, key));
}

function signedBytes(invitationId: Uint8Array, initiatorIdentity: Uint8Array, reason: RefusalReason, refusedAt: number): Uint8Array {
  const at = BigInt(refusedAt);
  return concat(LABEL_REFUSAL, invitationId, initiatorIdentity, Uint8Array.of(reason), u32be(Number(at >> 32n)), u32be(Number(at & 0xffffffffn)));
}

/** The inviter's refusal envelope (an UmbraEnvelopeV1) for a first contact that carried `key`. */
export function sealRefusal(
  crypto: CryptoProvider,
  params: {
    readonly key: Uint8Array;
    readonly invitationId: Uint8Array;
    readonly initiatorIdentity: Uint8Array;
    readonly inviterIdentity: KeyPair;
    readonly reason: HandshakeRefusalReason;
    readonly refusedAt: number;
    readonly salt: bigint;
  },
): Uint8Array {
  const reason = TO_WIRE[params.reason];
  const refusedAt = Math.floor(params.refusedAt);
  const body: RefusalBody = {
    $typeName: 'umbra.v1.RefusalBody',
    invitationId: params.invitationId,
    reason,
    refusedAt: BigInt(refusedAt),
    signature: crypto.ed25519Sign(params.inviterIdentity.secretKey, signedBytes(params.invitationId, params.initiatorIdentity, reason, refusedAt)),
  };
  const hint = refusalHint(crypto, params.key);
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const sealed = crypto.aeadSeal(aeadKey(crypto, params.key), nonce, pad(encode(RefusalBodySchema, body))!, utf8(hint)); // aad: a refusal moved under another hint does not open
  const payload = encodeEncryptedPayload({ case: 'handshakeRefusal', value: { $typeName: 'umbra.v1.HandshakeRefusal', ciphertext: concat(nonce, sealed) } });
  return encodeEnvelope(hint, params.salt, payload);
}

/**
 * The refusal in `refusal`, if it is the inviter's answer to our first contact; null when it does
 * not decrypt, is not canonical, names another invitation or fails the inviter's signature.
 */
export function openRefusal(
  crypto: CryptoProvider,
  refusal: HandshakeRefusal,
  hint: string,
  expected: { readonly key: Uint8Array; readonly invitationId: Uint8Array; readonly initiatorIdentity: Uint8Array; readonly inviterIdentityKey: Uint8Array },
): HandshakeRefused | null {
  const c = refusal.ciphertext;
  if (c.length < NONCE_BYTES + 16) return null;
  const padded = crypto.aeadOpen(aeadKey(crypto, expected.key), c.subarray(0, NONCE_BYTES), c.subarray(NONCE_BYTES), utf8(hint));
  if (padded === null) return null;
  const bytes = unpad(padded);
  if (bytes === null) return null;
  let body: RefusalBody;
  try {
    body = fromBinary(RefusalBodySchema, bytes, { readUnknownFields: false });
  } catch {
    return null;
  }
  if (!isReencodedSame(RefusalBodySchema, body, bytes)) return null;
  const reason = refusalReasonFromWire(body.reason);
  if (reason === null || toHex(body.invitationId) !== toHex(expected.invitationId)) return null;
  if (body.refusedAt > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const refusedAt = Number(body.refusedAt);
  const message = signedBytes(body.invitationId, expected.initiatorIdentity, body.reason, refusedAt);
  if (!crypto.ed25519Verify(expected.inviterIdentityKey, message, body.signature)) return null;
  return { reason, refusedAt };
}

function aeadKey(crypto: CryptoProvider, key: Uint8Array): Uint8Array {
  return crypto.hkdfSha256(key, EMPTY, LABEL_REFUSAL_AEAD, 32);
}
