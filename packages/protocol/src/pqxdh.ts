/**
 * First-contact key agreement: X3DH (Signal spec) plus ML-KEM-768 in the PQXDH pattern.
 *
 *   DH1 = X25519(toX(IK_I secret), SPK_R)      initiator identity  × responder signed prekey
 *   DH2 = X25519(EK_I, toX(IK_R))              initiator ephemeral × responder identity
 *   DH3 = X25519(EK_I, SPK_R)                  initiator ephemeral × responder signed prekey
 *   DH4 = X25519(EK_I, OPK_R)                  only with a one-time prekey
 *   (ct, SS) = ML-KEM-768.Encaps(PQPK_R)
 *   okm = HKDF(ikm = 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 ‖ [DH4] ‖ SS, salt = 0×32,
 *              info = "umbra/v1/x3dh" ‖ invitation_id, L = 96)
 *   SK = okm[0:32], HKa = okm[32:64], NHKb = okm[64:96]
 *
 * Identity keys are Ed25519 (they sign invitations); their X25519 form is the birational map.
 */
import type { CryptoProvider, KeyPair } from './crypto/provider.ts';
import { concat } from './bytes.ts';
import { LABEL_CONVERSATION_ID, LABEL_HINT_KEY_INITIATOR, LABEL_HINT_KEY_RESPONDER, LABEL_X3DH } from './labels.ts';

const F = new Uint8Array(32).fill(0xff);
const ZERO_SALT = new Uint8Array(32);

/** What the responder published (an invitation or inbox bundle). */
export interface ResponderBundle {
  readonly invitationId: Uint8Array;
  readonly identityKey: Uint8Array; // Ed25519
  readonly signedPrekey: Uint8Array; // X25519
  readonly oneTimePrekey: Uint8Array | null; // X25519
  readonly kemPrekey: Uint8Array; // ML-KEM-768 encapsulation key
}

/** The responder's secrets matching a ResponderBundle. */
export interface ResponderSecrets {
  readonly identity: KeyPair; // Ed25519 (secret = seed)
  readonly signedPrekey: KeyPair; // X25519
  readonly oneTimePrekey: KeyPair | null;
  readonly kemPrekey: KeyPair; // ML-KEM-768
}

export interface SessionKeys {
  readonly sharedSecret: Uint8Array; // SK: the first root key
  readonly headerKeyA: Uint8Array; // HKa: the initiator's first sending header key
  readonly nextHeaderKeyB: Uint8Array; // NHKb: the responder's first sending header key
  readonly conversationId: Uint8Array; // 16 bytes, never sent
  readonly hintKeyInitiator: Uint8Array; // HK for envelopes sent by the initiator
  readonly hintKeyResponder: Uint8Array; // HK for envelopes sent by the responder
  /** Ratchet AD: initiator identity ‖ responder identity (Ed25519 public keys). */
  readonly associatedData: Uint8Array;
}

export interface InitiatorHandshake {
  readonly keys: SessionKeys;
  readonly ephemeralPublicKey: Uint8Array;
  readonly kemCiphertext: Uint8Array;
}

function deriveSessionKeys(
  crypto: CryptoProvider,
  dhs: Uint8Array[],
  kemSecret: Uint8Array,
  invitationId: Uint8Array,
  initiatorIdentity: Uint8Array,
  responderIdentity: Uint8Array,
): SessionKeys {
  const okm = crypto.hkdfSha256(concat(F, ...dhs, kemSecret), ZERO_SALT, concat(LABEL_X3DH, invitationId), 96);
  const sharedSecret = okm.slice(0, 32);
  const empty = new Uint8Array(0);
  return {
    sharedSecret,
    headerKeyA: okm.slice(32, 64),
    nextHeaderKeyB: okm.slice(64, 96),
    conversationId: crypto.hkdfSha256(sharedSecret, empty, LABEL_CONVERSATION_ID, 16),
    hintKeyInitiator: crypto.hkdfSha256(sharedSecret, empty, LABEL_HINT_KEY_INITIATOR, 32),
    hintKeyResponder: crypto.hkdfSha256(sharedSecret, empty, LABEL_HINT_KEY_RESPONDER, 32),
    associatedData: concat(initiatorIdentity, responderIdentity),
  };
}

/** Initiator side. Returns null when a bundle key is malformed or low-order. */
export function initiatorAgree(
  crypto: CryptoProvider,
  identity: KeyPair,
  bundle: ResponderBundle,
): InitiatorHandshake | null {
  const responderIdentityX = crypto.ed25519PublicToX25519(bundle.identityKey);
  if (responderIdentityX === null) return null;
  const ephemeral = crypto.x25519Generate();
  const dh1 = crypto.x25519(crypto.ed25519SecretToX25519(identity.secretKey), bundle.signedPrekey);
  const dh2 = crypto.x25519(ephemeral.secretKey, responderIdentityX);
  const dh3 = crypto.x25519(ephemeral.secretKey, bundle.signedPrekey);
  const dh4 = bundle.oneTimePrekey === null ? new Uint8Array(0) : crypto.x25519(ephemeral.secretKey, bundle.oneTimePrekey);
  const kem = crypto.mlKem768Encapsulate(bundle.kemPrekey);
  if (dh1 === null || dh2 === null || dh3 === null || dh4 === null || kem === null) return null;
  return {
    keys: deriveSessionKeys(crypto, [dh1, dh2, dh3, dh4], kem.sharedSecret, bundle.invitationId, identity.publicKey, bundle.identityKey),
    ephemeralPublicKey: ephemeral.publicKey,
    kemCiphertext: kem.ciphertext,
  };
}

/** Responder side, from the values in the (opened) InitialMessage. Null on malformed keys. */
export function responderAgree(
  crypto: CryptoProvider,
  secrets: ResponderSecrets,
  invitationId: Uint8Array,
  initiatorIdentity: Uint8Array,
  initiatorEphemeral: Uint8Array,
  kemCiphertext: Uint8Array,
): SessionKeys | null {
  const initiatorIdentityX = crypto.ed25519PublicToX25519(initiatorIdentity);
  if (initiatorIdentityX === null) return null;
  const dh1 = crypto.x25519(secrets.signedPrekey.secretKey, initiatorIdentityX);
  const dh2 = crypto.x25519(crypto.ed25519SecretToX25519(secrets.identity.secretKey), initiatorEphemeral);
  const dh3 = crypto.x25519(secrets.signedPrekey.secretKey, initiatorEphemeral);
  const dh4 = secrets.oneTimePrekey === null ? new Uint8Array(0) : crypto.x25519(secrets.oneTimePrekey.secretKey, initiatorEphemeral);
  const kemSecret = crypto.mlKem768Decapsulate(kemCiphertext, secrets.kemPrekey.secretKey);
  if (dh1 === null || dh2 === null || dh3 === null || dh4 === null || kemSecret === null) return null;
  return deriveSessionKeys(crypto, [dh1, dh2, dh3, dh4], kemSecret, invitationId, initiatorIdentity, secrets.identity.publicKey);
}
