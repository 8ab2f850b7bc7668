/**
 * Every KDF info string, MAC context and signature context of the protocol, in one place.
 * docs/PROTOCOL.md lists the same constants; change both together.
 */
import { utf8 } from './bytes.ts';

/** PQXDH master secret: HKDF info = X3DH ‖ invitation_id. */
export const LABEL_X3DH = utf8('umbra/v1/x3dh');
/** HPKE info for the sealed InitialMessage. */
export const LABEL_INITIAL_MESSAGE = utf8('umbra/v1/initial-message');
/** Ed25519 signature context over an encoded Invitation. */
export const LABEL_INVITATION = utf8('umbra/v1/invitation');
/** Ed25519 signature context over u32be(id) ‖ X25519 prekey. */
export const LABEL_PREKEY = utf8('umbra/v1/prekey');
/** Ed25519 signature context over u32be(id) ‖ ML-KEM prekey. */
export const LABEL_KEM_PREKEY = utf8('umbra/v1/kem-prekey');
/** Double Ratchet root KDF (KDF_RK_HE): HKDF(salt = RK, ikm = DH output, info). */
export const LABEL_RATCHET_ROOT = utf8('umbra/v1/ratchet-root');
/** Conversation id: HKDF(SK, info) → 16 bytes. */
export const LABEL_CONVERSATION_ID = utf8('umbra/v1/conversation-id');
/** Per-direction hint keys: HKDF(SK, info) → 32 bytes each. */
export const LABEL_HINT_KEY_INITIATOR = utf8('umbra/v1/hint-key/initiator');
export const LABEL_HINT_KEY_RESPONDER = utf8('umbra/v1/hint-key/responder');
/** Hint block MAC: HMAC-SHA512(HK_dir, "umbra/v1/hint" ‖ u32be(hour) ‖ u32be(index / 4)). */
export const LABEL_HINT = utf8('umbra/v1/hint');
/** Default inbox route: SHA-256(label ‖ identity public key). */
export const LABEL_INBOX_ROUTE = utf8('umbra/v1/inbox');
/** Static inbox hint: SHA-256(label ‖ identity public key), first 16 bytes. */
export const LABEL_INBOX_HINT = utf8('umbra/v1/inbox-hint');
/** Safety number: SHA-256(label ‖ lower key ‖ higher key). */
export const LABEL_SAFETY_NUMBER = utf8('umbra/v1/safety-number');

/** KDF_CK input (Signal DR spec §5.2): HMAC-SHA512(ck, 0x01) = message key ‖ next chain key. */
export const CHAIN_KDF_INPUT = Uint8Array.of(0x01);

/** Short invitation links: where the sealed invitation is stored, SHA-256(label ‖ link key). */
export const LABEL_INVITATION_LINK_LOCATOR = utf8('umbra/v1/invitation-link/locator');
/** Short invitation links: the blob's AEAD key, HKDF(ikm = link key, salt = empty, info) → 32 bytes. */
export const LABEL_INVITATION_LINK_KEY = utf8('umbra/v1/invitation-link/key');

/** Handshake refusal (handshake-refusal.ts): RK = HKDF(ikm = initiator identity secret, salt = invitation_id, info) → 32 bytes. */
export const LABEL_REFUSAL_KEY = utf8('umbra/v1/refusal/key');
/** The refusal envelope's hint: HKDF(ikm = RK, salt = empty, info) → 16 bytes, hex. */
export const LABEL_REFUSAL_HINT = utf8('umbra/v1/refusal/hint');
/** The refusal body's AEAD key: HKDF(ikm = RK, salt = empty, info) → 32 bytes. */
export const LABEL_REFUSAL_AEAD = utf8('umbra/v1/refusal/aead');
/** Ed25519 signature context: label ‖ invitation_id ‖ initiator identity ‖ u8(reason) ‖ u64be(refused_at). */
export const LABEL_REFUSAL = utf8('umbra/v1/refusal');
