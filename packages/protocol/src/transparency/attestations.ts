/**
 * Signed statements about identity keys (communicator.md F6, F8, F9), all Ed25519 over
 * domain-separated byte strings:
 *
 *   Follows(B follows A): TBS = LP("umbra/v1/follows") ‖ LP(A) ‖ LP(B) ‖ u64 ts_ms ‖ u32 seq
 *                         sig_a = Sig(a, TBS), sig_b = Sig(b, TBS ‖ sig_a)
 *   Equiv(A ≡ B):         TBS = LP("umbra/v1/equiv") ‖ LP(min(A,B)) ‖ LP(max(A,B)) ‖ u64 ts_ms
 *                         sig_a = Sig(a, TBS), sig_b = Sig(b, TBS)   (both required)
 *   proof of possession:  Sig(ik, LP("umbra/v1/dir-pop") ‖ LP(ns) ‖ LP(name) ‖ IK ‖ u64 ts_ms)
 *   key package binding:  Sig(ik, LP("umbra/v1/dir-keypackage") ‖ LP(ns) ‖ LP(name) ‖ signed_invitation)
 *   directory attestation: Sig(log key, LP("umbra/v1/dir-attest") ‖ LP(ns) ‖ LP(name) ‖ IK ‖ u32 version ‖ u64 index ‖ u64 issued_at_ms)
 *
 * The protobuf messages in directory.proto only carry these; nothing is signed over a protobuf encoding.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat } from '../bytes.ts';
import {
  CheckpointGossipSchema,
  DirectoryKeyPackageSchema,
  EquivSchema,
  FollowsSchema,
  type CheckpointGossip,
  type DirectoryKeyPackage,
} from '../wire/gen/umbra/v1/directory_pb.ts';
import { bytesEqual, lp, u32, u64 } from './log.ts';

export const MAX_ATTESTATION_BYTES = 1024;
export const MAX_KEY_PACKAGE_BYTES = 24 * 1024 + 256;

function verify(pub: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  if (pub.length !== 32 || sig.length !== 64) return false;
  try {
    return ed25519.verify(sig, msg, pub);
  } catch {
    return false;
  }
}

function sign(secret: Uint8Array, msg: Uint8Array): Uint8Array {
  return ed25519.sign(msg, secret);
}

function publicOf(secret: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(secret);
}

function decode<T>(fn: () => T, bytes: Uint8Array, max: number): T | null {
  if (!(bytes instanceof Uint8Array) || bytes.length > max) return null;
  try {
    return fn();
  } catch {
    return null;
  }
}

// ---- Follows -------------------------------------------------------------------------------

export interface FollowsClaim {
  /** The old key. */
  readonly a: Uint8Array;
  /** The new key. */
  readonly b: Uint8Array;
  readonly tsMs: number;
  readonly seq: number;
}

function followsTbs(a: Uint8Array, b: Uint8Array, tsMs: number, seq: number): Uint8Array {
  return concat(lp('umbra/v1/follows'), lp(a), lp(b), u64(tsMs), u32(seq));
}

/** "B follows A": signed by the old secret `aSecret` and the new secret `bSecret`. */
export function createFollows(aSecret: Uint8Array, bSecret: Uint8Array, tsMs: number, seq = 0): Uint8Array {
  const a = publicOf(aSecret);
  const b = publicOf(bSecret);
  const tbs = followsTbs(a, b, tsMs, seq);
  const sigA = sign(aSecret, tbs);
  const sigB = sign(bSecret, concat(tbs, sigA));
  return toBinary(FollowsSchema, create(FollowsSchema, { a, b, tsMs: BigInt(tsMs), seq, sigA, sigB }));
}

/** Verifies both signatures; null when malformed or either does not verify. */
export function verifyFollows(bytes: Uint8Array): FollowsClaim | null {
  const f = decode(() => fromBinary(FollowsSchema, bytes), bytes, MAX_ATTESTATION_BYTES);
  if (f === null || f.a.length !== 32 || f.b.length !== 32 || bytesEqual(f.a, f.b)) return null;
  if (f.tsMs > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const tbs = followsTbs(f.a, f.b, Number(f.tsMs), f.seq);
  if (!verify(f.a, tbs, f.sigA) || !verify(f.b, concat(tbs, f.sigA), f.sigB)) return null;
  return { a: f.a, b: f.b, tsMs: Number(f.tsMs), seq: f.seq };
}

/** What the log records as a rotation's evidence: SHA-256 of the Follows bytes. */
export function followsDigest(bytes: Uint8Array): Uint8Array {
  return sha256(bytes);
}

// ---- Equiv ---------------------------------------------------------------------------------

export interface EquivClaim {
  readonly a: Uint8Array;
  readonly b: Uint8Array;
  readonly tsMs: number;
}

function compare(x: Uint8Array, y: Uint8Array): number {
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

function equivTbs(a: Uint8Array, b: Uint8Array, tsMs: number): Uint8Array {
  const [lo, hi] = compare(a, b) <= 0 ? [a, b] : [b, a];
  return concat(lp('umbra/v1/equiv'), lp(lo), lp(hi), u64(tsMs));
}

/** An Ed25519 key that signs without handing out its secret (e.g. a client's relationship key). */
export interface Ed25519Signer {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** "A is equivalent to B": both secrets sign. */
export function createEquiv(aSecret: Uint8Array, bSecret: Uint8Array, tsMs: number): Uint8Array {
  return createEquivWith(signerOf(aSecret), signerOf(bSecret), tsMs);
}

/** createEquiv through signers (the same bytes: Ed25519 is deterministic). */
export function createEquivWith(a: Ed25519Signer, b: Ed25519Signer, tsMs: number): Uint8Array {
  const tbs = equivTbs(a.publicKey, b.publicKey, tsMs);
  return toBinary(EquivSchema, create(EquivSchema, { a: a.publicKey, b: b.publicKey, tsMs: BigInt(tsMs), sigA: a.sign(tbs), sigB: b.sign(tbs) }));
}

function signerOf(secret: Uint8Array): Ed25519Signer {
  return { publicKey: publicOf(secret), sign: (message) => sign(secret, message) };
}

export function verifyEquiv(bytes: Uint8Array): EquivClaim | null {
  const e = decode(() => fromBinary(EquivSchema, bytes), bytes, MAX_ATTESTATION_BYTES);
  if (e === null || e.a.length !== 32 || e.b.length !== 32 || bytesEqual(e.a, e.b)) return null;
  if (e.tsMs > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const tbs = equivTbs(e.a, e.b, Number(e.tsMs));
  if (!verify(e.a, tbs, e.sigA) || !verify(e.b, tbs, e.sigB)) return null;
  return { a: e.a, b: e.b, tsMs: Number(e.tsMs) };
}

// ---- registration and key packages -----------------------------------------------------------

export function popMessage(namespace: string, name: string, ipk: Uint8Array, tsMs: number): Uint8Array {
  return concat(lp('umbra/v1/dir-pop'), lp(namespace), lp(name), ipk, u64(tsMs));
}

export function signPop(secret: Uint8Array, namespace: string, name: string, tsMs: number): Uint8Array {
  return sign(secret, popMessage(namespace, name, publicOf(secret), tsMs));
}

export function verifyPop(ipk: Uint8Array, namespace: string, name: string, tsMs: number, sig: Uint8Array): boolean {
  return verify(ipk, popMessage(namespace, name, ipk, tsMs), sig);
}

function bindingMessage(namespace: string, name: string, signedInvitation: Uint8Array): Uint8Array {
  return concat(lp('umbra/v1/dir-keypackage'), lp(namespace), lp(name), signedInvitation);
}

/** Wraps a signed invitation (bytes of umbra.v1.SignedInvitation) for upload to the directory. */
export function createKeyPackage(secret: Uint8Array, namespace: string, name: string, signedInvitation: Uint8Array): Uint8Array {
  const bindingSig = sign(secret, bindingMessage(namespace, name, signedInvitation));
  return toBinary(DirectoryKeyPackageSchema, create(DirectoryKeyPackageSchema, { signedInvitation, bindingSig }));
}

export function decodeKeyPackage(bytes: Uint8Array): DirectoryKeyPackage | null {
  const kp = decode(() => fromBinary(DirectoryKeyPackageSchema, bytes), bytes, MAX_KEY_PACKAGE_BYTES);
  if (kp === null || kp.signedInvitation.length === 0 || kp.bindingSig.length !== 64) return null;
  return kp;
}

/** Checks that `ipk` (the name's directory identity) bound this key package to (ns, name). */
export function verifyKeyPackage(bytes: Uint8Array, ipk: Uint8Array, namespace: string, name: string): DirectoryKeyPackage | null {
  const kp = decodeKeyPackage(bytes);
  if (kp === null) return null;
  return verify(ipk, bindingMessage(namespace, name, kp.signedInvitation), kp.bindingSig) ? kp : null;
}

// ---- directory attestation -------------------------------------------------------------------

export function directoryAttestationMessage(namespace: string, name: string, ipk: Uint8Array, version: number, index: number, issuedAtMs: number): Uint8Array {
  return concat(lp('umbra/v1/dir-attest'), lp(namespace), lp(name), ipk, u32(version), u64(index), u64(issuedAtMs));
}

export function signDirectoryAttestation(logSecret: Uint8Array, namespace: string, name: string, ipk: Uint8Array, version: number, index: number, issuedAtMs: number): Uint8Array {
  return sign(logSecret, directoryAttestationMessage(namespace, name, ipk, version, index, issuedAtMs));
}

export function verifyDirectoryAttestationSig(
  logKey: Uint8Array,
  namespace: string,
  name: string,
  ipk: Uint8Array,
  version: number,
  index: number,
  issuedAtMs: number,
  sig: Uint8Array,
): boolean {
  return verify(logKey, directoryAttestationMessage(namespace, name, ipk, version, index, issuedAtMs), sig);
}

// ---- gossip ------------------------------------------------------------------------------------

export function encodeCheckpointGossip(origin: string, checkpoint: string): Uint8Array {
  return toBinary(CheckpointGossipSchema, create(CheckpointGossipSchema, { origin, checkpoint }));
}

export function decodeCheckpointGossip(bytes: Uint8Array): CheckpointGossip | null {
  const g = decode(() => fromBinary(CheckpointGossipSchema, bytes), bytes, 8192);
  if (g === null || g.origin.length === 0 || g.checkpoint.length === 0) return null;
  return g;
}
