/**
 * Double Ratchet with header encryption (Signal, "The Double Ratchet Algorithm", §4), over
 * X25519, HKDF-SHA256, HMAC-SHA256 and ChaCha20-Poly1305 with fresh random 12-byte nonces.
 *
 * Sans-I/O and copy-on-write: `ratchetEncrypt` and `ratchetDecrypt` never mutate their input
 * state; they return a new state, so a caller can persist it first and adopt it after.
 * A failed decryption returns an error result and the caller keeps the old state.
 */
import type { CryptoProvider, KeyPair } from './crypto/provider.ts';
import { readU32be, toHex } from './bytes.ts';
import { CHAIN_KDF_INPUT, LABEL_RATCHET_ROOT } from './labels.ts';

/** Most message keys skipped within one receiving chain (Signal's MAX_SKIP). */
export const MAX_SKIP = 1000;
/** Most skipped message keys kept per relationship; the oldest are evicted first. */
export const MAX_STORED_SKIPPED_KEYS = 2000;
/** Skipped message keys older than this are deleted (milliseconds). */
export const SKIPPED_KEY_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Plain header: ratchet public key (32) ‖ u32be(PN) ‖ u32be(N). */
export const HEADER_BYTES = 40;
export const ENCRYPTED_HEADER_BYTES = NONCE_BYTES + HEADER_BYTES + TAG_BYTES;

export interface SkippedMessageKey {
  readonly headerKey: Uint8Array;
  readonly n: number;
  readonly messageKey: Uint8Array;
  /** Unix milliseconds when the key was stored (for the 30-day expiry). */
  readonly storedAt: number;
}

export interface RatchetState {
  readonly rootKey: Uint8Array;
  readonly sendingRatchetKey: KeyPair; // DHs
  readonly receivingRatchetKey: Uint8Array | null; // DHr
  readonly sendingChainKey: Uint8Array | null; // CKs
  readonly receivingChainKey: Uint8Array | null; // CKr
  readonly sendingHeaderKey: Uint8Array | null; // HKs
  readonly receivingHeaderKey: Uint8Array | null; // HKr
  readonly nextSendingHeaderKey: Uint8Array; // NHKs
  readonly nextReceivingHeaderKey: Uint8Array; // NHKr
  readonly sendCount: number; // Ns
  readonly receiveCount: number; // Nr
  readonly previousSendCount: number; // PN
  /** MKSKIPPED, keyed by skippedKeyId(headerKey, n), in insertion order (oldest first). */
  readonly skipped: ReadonlyMap<string, SkippedMessageKey>;
}

export interface RatchetHeader {
  readonly ratchetKey: Uint8Array;
  readonly previousCount: number;
  readonly n: number;
}

export interface RatchetCiphertext {
  /** nonce ‖ AEAD(header) : ENCRYPTED_HEADER_BYTES */
  readonly header: Uint8Array;
  /** nonce ‖ AEAD(plaintext, AD ‖ header) */
  readonly ciphertext: Uint8Array;
}

export type RatchetDecryptResult =
  | { readonly ok: true; readonly plaintext: Uint8Array; readonly state: RatchetState }
  | { readonly ok: false; readonly reason: RatchetFailure };

export type RatchetFailure =
  | 'header-undecryptable' // no header key opens it: not this conversation, or forged
  | 'replay' // a message key that was already used
  | 'too-many-skipped' // more than MAX_SKIP keys would have to be skipped
  | 'body-undecryptable' // header authentic but body forged or corrupted
  | 'malformed';

/** The skipped-key map of a state that has skipped none: shared (states never mutate theirs). */
export const NO_SKIPPED: ReadonlyMap<string, SkippedMessageKey> = new Map();

function skippedKeyId(headerKey: Uint8Array, n: number): string {
  return `${toHex(headerKey)}:${n}`;
}

/** KDF_RK_HE(rk, dh_out) → (root key, chain key, next header key). */
function kdfRoot(crypto: CryptoProvider, rootKey: Uint8Array, dhOutput: Uint8Array) {
  const okm = crypto.hkdfSha256(dhOutput, rootKey, LABEL_RATCHET_ROOT, 96);
  return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64), nextHeaderKey: okm.slice(64, 96) };
}

/**
 * KDF_CK(ck) → (message key, next chain key): the two halves of one HMAC-SHA512(ck, 0x01)
 * (Signal's spec allows SHA-512; one call instead of two halves the per-message MAC cost).
 * Each half gets its own buffer and the output is wiped, so a stored skipped message key never
 * keeps the chain key that followed it (forward secrecy), nor the reverse.
 */
function kdfChain(crypto: CryptoProvider, chainKey: Uint8Array) {
  const out = crypto.hmacSha512(chainKey, CHAIN_KDF_INPUT);
  const keys = { messageKey: out.slice(0, 32), chainKey: out.slice(32, 64) };
  out.fill(0);
  return keys;
}

function dh(crypto: CryptoProvider, pair: KeyPair, publicKey: Uint8Array): Uint8Array {
  const out = crypto.x25519(pair.secretKey, publicKey);
  // A low-order ratchet key from the peer: refuse rather than derive from a known value.
  if (out === null) throw new RatchetKeyError();
  return out;
}

/** Internal: thrown only inside this module and mapped to a 'malformed' result. */
class RatchetKeyError extends Error {}

const NO_AAD = new Uint8Array(0);

function seal(crypto: CryptoProvider, key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const sealed = crypto.aeadSeal(key, nonce, plaintext, aad);
  const out = new Uint8Array(NONCE_BYTES + sealed.length);
  out.set(nonce, 0);
  out.set(sealed, NONCE_BYTES);
  return out;
}

/**
 * a ‖ b, the per-message AAD, in a reused buffer: it is read only by the one synchronous AEAD call
 * it is made for and never kept, so each message saves an off-heap allocation (arrays over 64
 * bytes are not on V8's heap). Not secret (identity keys, hint, encrypted header).
 */
let aadScratch = new Uint8Array(256);
function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const length = a.length + b.length;
  if (length > aadScratch.length) aadScratch = new Uint8Array(Math.max(length, 2 * aadScratch.length));
  aadScratch.set(a, 0);
  aadScratch.set(b, a.length);
  return aadScratch.subarray(0, length);
}

function open(crypto: CryptoProvider, key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return null;
  return crypto.aeadOpen(key, sealed.subarray(0, NONCE_BYTES), sealed.subarray(NONCE_BYTES), aad);
}

/** ratchetKey(32) ‖ u32be(previousCount) ‖ u32be(n), written in place. */
function encodeHeader(ratchetKey: Uint8Array, previousCount: number, n: number): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  out.set(ratchetKey, 0);
  writeU32be(out, 32, previousCount);
  writeU32be(out, 36, n);
  return out;
}

function writeU32be(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

function decodeHeader(bytes: Uint8Array): RatchetHeader | null {
  if (bytes.length !== HEADER_BYTES) return null;
  return { ratchetKey: bytes.slice(0, 32), previousCount: readU32be(bytes, 32), n: readU32be(bytes, 36) };
}

/** RatchetInitAliceHE: the initiator knows the responder's ratchet public key (its signed prekey). */
export function initInitiator(
  crypto: CryptoProvider,
  sharedSecret: Uint8Array,
  responderRatchetKey: Uint8Array,
  sharedHeaderKeyA: Uint8Array,
  sharedNextHeaderKeyB: Uint8Array,
): RatchetState {
  const sendingRatchetKey = crypto.x25519Generate();
  const root = kdfRoot(crypto, sharedSecret, dh(crypto, sendingRatchetKey, responderRatchetKey));
  return {
    rootKey: root.rootKey,
    sendingRatchetKey,
    receivingRatchetKey: responderRatchetKey,
    sendingChainKey: root.chainKey,
    receivingChainKey: null,
    sendingHeaderKey: sharedHeaderKeyA,
    receivingHeaderKey: null,
    nextSendingHeaderKey: root.nextHeaderKey,
    nextReceivingHeaderKey: sharedNextHeaderKeyB,
    sendCount: 0,
    receiveCount: 0,
    previousSendCount: 0,
    skipped: NO_SKIPPED,
  };
}

/** RatchetInitBobHE: the responder's first ratchet key pair is its signed prekey. */
export function initResponder(
  sharedSecret: Uint8Array,
  responderRatchetKeyPair: KeyPair,
  sharedHeaderKeyA: Uint8Array,
  sharedNextHeaderKeyB: Uint8Array,
): RatchetState {
  return {
    rootKey: sharedSecret,
    sendingRatchetKey: responderRatchetKeyPair,
    receivingRatchetKey: null,
    sendingChainKey: null,
    receivingChainKey: null,
    sendingHeaderKey: null,
    receivingHeaderKey: null,
    nextSendingHeaderKey: sharedNextHeaderKeyB,
    nextReceivingHeaderKey: sharedHeaderKeyA,
    sendCount: 0,
    receiveCount: 0,
    previousSendCount: 0,
    skipped: NO_SKIPPED,
  };
}

export function canSend(state: RatchetState): boolean {
  return state.sendingChainKey !== null && state.sendingHeaderKey !== null;
}

/** RatchetEncryptHE. The caller pads the plaintext. Throws only if canSend(state) is false. */
export function ratchetEncrypt(
  crypto: CryptoProvider,
  state: RatchetState,
  plaintext: Uint8Array,
  associatedData: Uint8Array,
): { state: RatchetState; message: RatchetCiphertext } {
  if (state.sendingChainKey === null || state.sendingHeaderKey === null) {
    throw new Error('ratchetEncrypt: no sending chain yet (the responder must receive first)');
  }
  const chain = kdfChain(crypto, state.sendingChainKey);
  const plainHeader = encodeHeader(state.sendingRatchetKey.publicKey, state.previousSendCount, state.sendCount);
  const header = seal(crypto, state.sendingHeaderKey, plainHeader, NO_AAD);
  const ciphertext = seal(crypto, chain.messageKey, plaintext, join(associatedData, header));
  return {
    state: { ...state, sendingChainKey: chain.chainKey, sendCount: state.sendCount + 1 },
    message: { header, ciphertext },
  };
}

/**
 * RatchetDecryptHE on a copy. `now` (unix ms) stamps newly skipped keys and expires old ones.
 */
export function ratchetDecrypt(
  crypto: CryptoProvider,
  state: RatchetState,
  message: RatchetCiphertext,
  associatedData: Uint8Array,
  now: number,
): RatchetDecryptResult {
  if (message.header.length !== ENCRYPTED_HEADER_BYTES || message.ciphertext.length < NONCE_BYTES + TAG_BYTES) {
    return { ok: false, reason: 'malformed' };
  }
  try {
    return decrypt(crypto, state, message, join(associatedData, message.header), now);
  } catch (e) {
    if (e instanceof RatchetKeyError) return { ok: false, reason: 'malformed' };
    throw e;
  }
}

function decrypt(
  crypto: CryptoProvider,
  state: RatchetState,
  message: RatchetCiphertext,
  aad: Uint8Array,
  now: number,
): RatchetDecryptResult {
  // The current receiving chain and the next header key (a DH ratchet step), then the header
  // keys of older chains that still have skipped keys. Which of the first two is tried first
  // only saves a failed AEAD open: once we have sent on our current chain, the peer's next
  // message most likely answers it with a new ratchet key (ping-pong); otherwise the peer is
  // still sending on its current chain (a burst).
  let header: RatchetHeader | null = null;
  let stepRatchet = false;
  const nextFirst = state.sendCount > 0 || state.receivingHeaderKey === null;
  for (let trial = 0; trial < 2; trial++) {
    const next = (trial === 0) === nextFirst;
    const key = next ? state.nextReceivingHeaderKey : state.receivingHeaderKey;
    if (key === null) continue;
    const plain = open(crypto, key, message.header, NO_AAD);
    if (plain === null) continue;
    header = decodeHeader(plain);
    if (header === null) return { ok: false, reason: 'malformed' };
    if (next) stepRatchet = true;
    else if (header.n < state.receiveCount) return useSkipped(crypto, state, key, header.n, message, aad, now);
    break;
  }
  if (header === null) {
    // Entries of one chain share one headerKey array, so identity dedupes the trials.
    const tried = new Set<Uint8Array>();
    for (const entry of state.skipped.values()) {
      if (tried.has(entry.headerKey)) continue;
      tried.add(entry.headerKey);
      const plain = open(crypto, entry.headerKey, message.header, NO_AAD);
      if (plain === null) continue;
      const old = decodeHeader(plain);
      if (old === null) return { ok: false, reason: 'malformed' };
      return useSkipped(crypto, state, entry.headerKey, old.n, message, aad, now);
    }
    return { ok: false, reason: 'header-undecryptable' };
  }

  const s: Mutable<RatchetState> = { ...state };
  let skipped: Map<string, SkippedMessageKey> | null = null;
  const skip = (until: number): boolean => {
    if (s.receivingChainKey === null || s.receivingHeaderKey === null) return true;
    if (until - s.receiveCount > MAX_SKIP) return false;
    while (s.receiveCount < until) {
      const chain = kdfChain(crypto, s.receivingChainKey);
      skipped ??= new Map(state.skipped);
      skipped.set(skippedKeyId(s.receivingHeaderKey, s.receiveCount), {
        headerKey: s.receivingHeaderKey,
        n: s.receiveCount,
        messageKey: chain.messageKey,
        storedAt: now,
      });
      s.receivingChainKey = chain.chainKey;
      s.receiveCount += 1;
    }
    return true;
  };

  if (stepRatchet) {
    if (!skip(header.previousCount)) return { ok: false, reason: 'too-many-skipped' };
    // DHRatchetHE
    s.previousSendCount = s.sendCount;
    s.sendCount = 0;
    s.receiveCount = 0;
    s.sendingHeaderKey = s.nextSendingHeaderKey;
    s.receivingHeaderKey = s.nextReceivingHeaderKey;
    s.receivingRatchetKey = header.ratchetKey;
    const recv = kdfRoot(crypto, s.rootKey, dh(crypto, s.sendingRatchetKey, header.ratchetKey));
    s.receivingChainKey = recv.chainKey;
    s.nextReceivingHeaderKey = recv.nextHeaderKey;
    s.sendingRatchetKey = crypto.x25519Generate();
    const send = kdfRoot(crypto, recv.rootKey, dh(crypto, s.sendingRatchetKey, header.ratchetKey));
    s.rootKey = send.rootKey;
    s.sendingChainKey = send.chainKey;
    s.nextSendingHeaderKey = send.nextHeaderKey;
  }
  if (!skip(header.n)) return { ok: false, reason: 'too-many-skipped' };
  if (s.receivingChainKey === null) return { ok: false, reason: 'malformed' };
  const chain = kdfChain(crypto, s.receivingChainKey);
  const plaintext = open(crypto, chain.messageKey, message.ciphertext, aad);
  if (plaintext === null) return { ok: false, reason: 'body-undecryptable' };
  s.receivingChainKey = chain.chainKey;
  s.receiveCount += 1;
  if (skipped !== null) s.skipped = expire(evict(skipped), now);
  else if (hasExpired(state.skipped, now)) s.skipped = expire(new Map(state.skipped), now);
  return { ok: true, plaintext, state: s };
}

/** A message whose key was skipped earlier; a second use of it is a replay. */
function useSkipped(
  crypto: CryptoProvider,
  state: RatchetState,
  headerKey: Uint8Array,
  n: number,
  message: RatchetCiphertext,
  aad: Uint8Array,
  now: number,
): RatchetDecryptResult {
  const id = skippedKeyId(headerKey, n);
  const entry = state.skipped.get(id);
  if (entry === undefined) return { ok: false, reason: 'replay' };
  const plaintext = open(crypto, entry.messageKey, message.ciphertext, aad);
  if (plaintext === null) return { ok: false, reason: 'body-undecryptable' };
  const skipped = new Map(state.skipped);
  skipped.delete(id);
  return { ok: true, plaintext, state: { ...state, skipped: expire(skipped, now) } };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function evict(skipped: Map<string, SkippedMessageKey>): Map<string, SkippedMessageKey> {
  // Map iteration is insertion order: the first entries are the oldest.
  for (const id of skipped.keys()) {
    if (skipped.size <= MAX_STORED_SKIPPED_KEYS) break;
    skipped.delete(id);
  }
  return skipped;
}

function hasExpired(skipped: ReadonlyMap<string, SkippedMessageKey>, now: number): boolean {
  const first = skipped.values().next();
  return !first.done && now - first.value.storedAt > SKIPPED_KEY_MAX_AGE_MS;
}

function expire(skipped: Map<string, SkippedMessageKey>, now: number): Map<string, SkippedMessageKey> {
  for (const [id, entry] of skipped) {
    if (now - entry.storedAt <= SKIPPED_KEY_MAX_AGE_MS) break;
    skipped.delete(id);
  }
  return skipped;
}
