/**
 * The Directory Transparency Log (communicator.md §7.2) byte for byte: entries, name labels,
 * value commitments, and checkpoints as C2SP signed notes. Pure: clients and the directory
 * service use the same code.
 *
 *   entry      = u8 v=1 ‖ u8 type ‖ LP(ns) ‖ label[32] ‖ u32 version ‖ u64 ts_ms ‖ commitment[32] ‖ prev[32] ‖ LP(evidence)
 *   label      = SHA-256(LP("umbra/v1/dir-label") ‖ LP(ns) ‖ LP(name))           (VRF labels: v2)
 *   commitment = HMAC-SHA256(Kc, opening[16] ‖ LP(label) ‖ u32 version ‖ value)  Kc = SHA-256("umbra/v1/dir-commitment")
 *   prev       = leaf hash of the label's previous entry (32 zero bytes for the first)
 *   evidence   = SHA-256(Follows) for a rotation, empty otherwise
 *   checkpoint = "<origin>\n<size>\n<base64 root>\n" + "\n— <origin> <base64(key id[4] ‖ Ed25519 sig)>\n"
 *                key id = SHA-256(origin ‖ "\n" ‖ 0x01 ‖ public key)[0:4]        (C2SP signed-note)
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, utf8 } from '../bytes.ts';
import { HASH_BYTES } from './merkle.ts';

export const ENTRY_VERSION = 1;
export const OPENING_BYTES = 16;
export const MAX_NAMESPACE_CHARS = 253;
export const MAX_EVIDENCE_BYTES = 64;

export const EntryType = { register: 1, rotate: 2, reset: 3, delete: 4, serviceKey: 5 } as const;
export type EntryTypeName = keyof typeof EntryType;

export interface LogEntry {
  readonly type: EntryTypeName;
  readonly namespace: string;
  readonly label: Uint8Array;
  readonly version: number;
  readonly tsMs: number;
  readonly commitment: Uint8Array;
  readonly prev: Uint8Array;
  readonly evidence: Uint8Array;
}

const enc = new TextEncoder();

/** LP(x) = u16be(len) ‖ x. */
export function lp(x: Uint8Array | string): Uint8Array {
  const b = typeof x === 'string' ? enc.encode(x) : x;
  if (b.length > 0xffff) throw new RangeError('lp: field too long');
  return concat(Uint8Array.of(b.length >> 8, b.length & 0xff), b);
}

export function u32(v: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v >>> 0, false);
  return out;
}

export function u64(v: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(Math.max(0, Math.floor(v))), false);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function toB64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return btoa(s);
}

export function fromB64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  try {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return toB64(out) === text ? out : null;
  } catch {
    return null;
  }
}

// ---- names -------------------------------------------------------------------------------

/** Namespace-local names: 1–64 of a-z 0-9 . _ - , starting with a letter or digit. */
export const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name);
}

export function nameLabel(namespace: string, name: string): Uint8Array {
  return sha256(concat(lp('umbra/v1/dir-label'), lp(namespace), lp(name)));
}

const COMMITMENT_KEY = sha256(utf8('umbra/v1/dir-commitment'));

export function commitValue(opening: Uint8Array, label: Uint8Array, version: number, value: Uint8Array): Uint8Array {
  return hmac(sha256, COMMITMENT_KEY, concat(opening, lp(label), u32(version), value));
}

// ---- entries -------------------------------------------------------------------------------

export function encodeEntry(e: LogEntry): Uint8Array {
  if (e.label.length !== HASH_BYTES || e.commitment.length !== HASH_BYTES || e.prev.length !== HASH_BYTES) throw new RangeError('entry: bad hash length');
  if (e.evidence.length > MAX_EVIDENCE_BYTES) throw new RangeError('entry: evidence too long');
  return concat(
    Uint8Array.of(ENTRY_VERSION, EntryType[e.type]),
    lp(e.namespace),
    e.label,
    u32(e.version),
    u64(e.tsMs),
    e.commitment,
    e.prev,
    lp(e.evidence),
  );
}

/** Decodes an entry; null when malformed (wrong version, unknown type, bad lengths, trailing bytes). */
export function decodeEntry(b: Uint8Array): LogEntry | null {
  try {
    if (b.length < 2) return null;
    if (b[0] !== ENTRY_VERSION) return null;
    const type = (Object.keys(EntryType) as EntryTypeName[]).find((k) => EntryType[k] === b[1]);
    if (type === undefined) return null;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let o = 2;
    const nsLen = dv.getUint16(o);
    o += 2;
    if (nsLen > MAX_NAMESPACE_CHARS * 4 || o + nsLen > b.length) return null;
    const namespace = new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(o, o + nsLen));
    o += nsLen;
    if (o + 32 + 4 + 8 + 32 + 32 + 2 > b.length) return null;
    const label = b.slice(o, o + 32);
    o += 32;
    const version = dv.getUint32(o);
    o += 4;
    const ts = dv.getBigUint64(o);
    o += 8;
    if (ts > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    const commitment = b.slice(o, o + 32);
    o += 32;
    const prev = b.slice(o, o + 32);
    o += 32;
    const evLen = dv.getUint16(o);
    o += 2;
    if (evLen > MAX_EVIDENCE_BYTES || o + evLen !== b.length) return null;
    const evidence = b.slice(o, o + evLen);
    return { type, namespace, label, version, tsMs: Number(ts), commitment, prev, evidence };
  } catch {
    return null;
  }
}

// ---- checkpoints ---------------------------------------------------------------------------

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Uint8Array;
  /** The whole signed note, as served and gossiped. */
  readonly text: string;
}

export const MAX_CHECKPOINT_CHARS = 4096;

export function noteKeyId(origin: string, publicKey: Uint8Array): Uint8Array {
  return sha256(concat(utf8(origin), Uint8Array.of(0x0a, 0x01), publicKey)).slice(0, 4);
}

export function checkpointBody(origin: string, size: number, root: Uint8Array): string {
  return `${origin}\n${size}\n${toB64(root)}\n`;
}

/** Signs a checkpoint with the log key (a 32-byte Ed25519 secret). */
export function signCheckpoint(origin: string, size: number, root: Uint8Array, logSecretKey: Uint8Array): Checkpoint {
  if (!/^[\x21-\x7e]{1,255}$/.test(origin)) throw new RangeError('checkpoint origin must be printable ASCII without spaces');
  const body = checkpointBody(origin, size, root);
  const sig = ed25519.sign(utf8(body), logSecretKey);
  const keyId = noteKeyId(origin, ed25519.getPublicKey(logSecretKey));
  const text = `${body}\n\u2014 ${origin} ${toB64(concat(keyId, sig))}\n`;
  return { origin, size, root: new Uint8Array(root), text };
}

/**
 * Parses and verifies a checkpoint against the pinned origin and log key; null when anything is
 * off (format, origin, key id, signature). Extension lines are not accepted in v1.
 */
export function verifyCheckpoint(text: unknown, origin: string, logKey: Uint8Array): Checkpoint | null {
  if (typeof text !== 'string' || text.length > MAX_CHECKPOINT_CHARS) return null;
  const sep = text.indexOf('\n\n');
  if (sep < 0) return null;
  const body = text.slice(0, sep + 1);
  const sigs = text.slice(sep + 2);
  const lines = body.split('\n');
  if (lines.length !== 4 || lines[3] !== '') return null;
  const [o, sizeText, rootText] = lines as [string, string, string];
  if (o !== origin || !/^(0|[1-9][0-9]{0,15})$/.test(sizeText)) return null;
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) return null;
  const root = fromB64(rootText);
  if (root === null || root.length !== HASH_BYTES) return null;
  const wantId = noteKeyId(origin, logKey);
  for (const line of sigs.split('\n')) {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (m === null || m[1] !== origin) continue;
    const raw = fromB64(m[2]!);
    if (raw === null || raw.length !== 68 || !bytesEqual(raw.subarray(0, 4), wantId)) continue;
    try {
      if (ed25519.verify(raw.subarray(4), utf8(body), logKey)) return { origin, size, root, text };
    } catch {
      return null;
    }
  }
  return null;
}

/** The origin line of a checkpoint without verifying it (to pick the right pinned key). */
export function checkpointOrigin(text: unknown): string | null {
  if (typeof text !== 'string' || text.length > MAX_CHECKPOINT_CHARS) return null;
  const i = text.indexOf('\n');
  return i > 0 ? text.slice(0, i) : null;
}
