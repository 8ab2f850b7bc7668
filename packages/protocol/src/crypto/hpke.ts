/**
 * RFC 9180 HPKE, the one suite Umbra uses: base mode, DHKEM(X25519, HKDF-SHA256) (0x0020),
 * HKDF-SHA256 (0x0001), ChaCha20-Poly1305 (0x0003), single-shot (sequence number 0).
 *
 * Written once over the provider's primitives (X25519, HMAC-SHA256, the AEAD), so every provider
 * gets the same construction: the noble provider runs it on @noble/*, the node:crypto provider on
 * OpenSSL, and the RSA's storage seal uses it too. No new primitive here, only RFC 9180 §4–§5's
 * key schedule spelled out step by step. Checked against RFC 9180 A.2 and @hpke/core
 * (test/crypto-conformance.ts, test/hpke.test.ts).
 */
import { concat, utf8 } from '../bytes.ts';
import type { CryptoProvider, HpkeSealed } from './provider.ts';

/** The primitives HPKE needs: any CryptoProvider has them. */
export type HpkePrimitives = Pick<CryptoProvider, 'hmacSha256' | 'x25519' | 'x25519Generate' | 'x25519PublicKey' | 'aeadSeal' | 'aeadOpen'>;

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0003;
const MODE_BASE = 0x00;
const N_SECRET = 32; // Nsecret of DHKEM(X25519, HKDF-SHA256)
const N_KEY = 32; // Nk of ChaCha20-Poly1305
const N_NONCE = 12; // Nn
const N_ENC = 32; // Nenc = Npk
const N_TAG = 16;

const HPKE_V1 = utf8('HPKE-v1');
const KEM_SUITE_ID = concat(utf8('KEM'), u16(KEM_ID));
const HPKE_SUITE_ID = concat(utf8('HPKE'), u16(KEM_ID), u16(KDF_ID), u16(AEAD_ID));
const EMPTY = new Uint8Array(0);

const LABEL_DKP_PRK = utf8('dkp_prk');
const LABEL_SK = utf8('sk');
const LABEL_EAE_PRK = utf8('eae_prk');
const LABEL_SHARED_SECRET = utf8('shared_secret');
const LABEL_PSK_ID_HASH = utf8('psk_id_hash');
const LABEL_INFO_HASH = utf8('info_hash');
const LABEL_SECRET = utf8('secret');
const LABEL_KEY = utf8('key');
const LABEL_BASE_NONCE = utf8('base_nonce');

function u16(n: number): Uint8Array {
  return new Uint8Array([n >> 8, n & 0xff]);
}

/** LabeledExtract(salt, label, ikm) = HKDF-Extract(salt, "HPKE-v1" ‖ suite_id ‖ label ‖ ikm). An empty salt is HMAC's zero key, as RFC 5869 says. */
function labeledExtract(p: HpkePrimitives, suiteId: Uint8Array, salt: Uint8Array, label: Uint8Array, ikm: Uint8Array): Uint8Array {
  return p.hmacSha256(salt, concat(HPKE_V1, suiteId, label, ikm));
}

/** LabeledExpand(prk, label, info, L) for L ≤ 32: HKDF-Expand needs one block, T(1). */
function labeledExpand(p: HpkePrimitives, suiteId: Uint8Array, prk: Uint8Array, label: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const block = p.hmacSha256(prk, concat(u16(length), HPKE_V1, suiteId, label, info, new Uint8Array([1])));
  return block.subarray(0, length);
}

/** RFC 9180 §7.1.3 DeriveKeyPair for X25519: the secret is used as is (X25519 clamps it). */
function deriveKeyPair(p: HpkePrimitives, ikm: Uint8Array): { secretKey: Uint8Array; publicKey: Uint8Array } {
  const dkpPrk = labeledExtract(p, KEM_SUITE_ID, EMPTY, LABEL_DKP_PRK, ikm);
  const secretKey = labeledExpand(p, KEM_SUITE_ID, dkpPrk, LABEL_SK, EMPTY, N_SECRET);
  return { secretKey, publicKey: p.x25519PublicKey(secretKey) };
}

/** §4.1 ExtractAndExpand(dh, kem_context = enc ‖ pkR). */
function kemSharedSecret(p: HpkePrimitives, dh: Uint8Array, enc: Uint8Array, pkR: Uint8Array): Uint8Array {
  const eaePrk = labeledExtract(p, KEM_SUITE_ID, EMPTY, LABEL_EAE_PRK, dh);
  return labeledExpand(p, KEM_SUITE_ID, eaePrk, LABEL_SHARED_SECRET, concat(enc, pkR), N_SECRET);
}

/**
 * key_schedule_context = mode ‖ psk_id_hash ‖ info_hash depends only on the info: every
 * handshake uses the same one, so the last one is kept per provider (public values; a copy of
 * the info is compared, so a caller that reuses its info array with new bytes gets a new one).
 */
const lastContext = new WeakMap<HpkePrimitives, { info: Uint8Array; context: Uint8Array }>();

function keyScheduleContext(p: HpkePrimitives, info: Uint8Array): Uint8Array {
  const memo = lastContext.get(p);
  if (memo !== undefined && memo.info.length === info.length && memo.info.every((b, i) => b === info[i])) return memo.context;
  const pskIdHash = labeledExtract(p, HPKE_SUITE_ID, EMPTY, LABEL_PSK_ID_HASH, EMPTY);
  const infoHash = labeledExtract(p, HPKE_SUITE_ID, EMPTY, LABEL_INFO_HASH, info);
  const context = concat(new Uint8Array([MODE_BASE]), pskIdHash, infoHash);
  lastContext.set(p, { info: info.slice(), context });
  return context;
}

/** §5.1 KeySchedule in base mode (empty psk and psk_id): the AEAD key and base nonce. */
function keySchedule(p: HpkePrimitives, sharedSecret: Uint8Array, info: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const context = keyScheduleContext(p, info);
  const secret = labeledExtract(p, HPKE_SUITE_ID, sharedSecret, LABEL_SECRET, EMPTY);
  return {
    key: labeledExpand(p, HPKE_SUITE_ID, secret, LABEL_KEY, context, N_KEY),
    nonce: labeledExpand(p, HPKE_SUITE_ID, secret, LABEL_BASE_NONCE, context, N_NONCE),
  };
}

/**
 * SealBase(pkR, info, aad, pt) at sequence 0. `ephemeralSeed` is DeriveKeyPair's ikm (vectors and
 * tests only); otherwise the ephemeral key comes from the provider's CSPRNG. Throws a RangeError
 * for a recipient key that is not 32 bytes or gives an all-zero DH (a low-order point).
 */
export function hpkeSealBase(p: HpkePrimitives, recipientPublicKey: Uint8Array, info: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, ephemeralSeed?: Uint8Array): HpkeSealed {
  if (recipientPublicKey.length !== N_ENC) throw new RangeError(`HPKE recipient public key must be ${N_ENC} bytes`);
  const ephemeral = ephemeralSeed === undefined ? p.x25519Generate() : deriveKeyPair(p, ephemeralSeed);
  const dh = p.x25519(ephemeral.secretKey, recipientPublicKey);
  if (dh === null) throw new RangeError('HPKE recipient public key gives an all-zero shared secret');
  const enc = ephemeral.publicKey;
  const { key, nonce } = keySchedule(p, kemSharedSecret(p, dh, enc, recipientPublicKey), info);
  return { enc, ciphertext: p.aeadSeal(key, nonce, plaintext, aad) };
}

/** OpenBase at sequence 0; null when anything does not fit or the tag does not verify. Never throws. */
export function hpkeOpenBase(p: HpkePrimitives, recipientSecretKey: Uint8Array, enc: Uint8Array, info: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
  if (recipientSecretKey.length !== N_SECRET || enc.length !== N_ENC || ciphertext.length < N_TAG) return null;
  try {
    const dh = p.x25519(recipientSecretKey, enc);
    if (dh === null) return null;
    const pkR = p.x25519PublicKey(recipientSecretKey);
    const { key, nonce } = keySchedule(p, kemSharedSecret(p, dh, enc, pkR), info);
    return p.aeadOpen(key, nonce, ciphertext, aad);
  } catch {
    return null;
  }
}
