/**
 * Client-side checks for the Directory Transparency Log (communicator.md F7, §7.5). Pure and
 * sans-I/O: the caller fetches bundles, proofs and entries, and persists `toJSON()`.
 *
 * - LogVerifier: the checkpoint a client holds for one directory (it keeps the newest, moving only
 *   along consistency proofs), the last version and key seen per name (rollback and rollover
 *   checks), lookup bundle verification, and gossip comparison (split-view detection).
 * - LogMonitor: an owner's view of the whole log (a compact range), checking every new entry
 *   for its own labels and raising an alert on any version or key it did not register.
 */
import { fromBase64Url, toBase64Url, toHex } from '../bytes.ts';
import { followsDigest, verifyFollows } from './attestations.ts';
import { bytesEqual, checkpointOrigin, commitValue, decodeEntry, nameLabel, verifyCheckpoint, type Checkpoint, OPENING_BYTES } from './log.ts';
import { CompactRange, HASH_BYTES, leafHash, verifyConsistency, verifyInclusion } from './merkle.ts';

export type TransparencyErrorCode =
  | 'bad-checkpoint'
  | 'split-view'
  | 'bad-consistency'
  | 'bad-bundle'
  | 'bad-inclusion'
  | 'bad-commitment'
  | 'bad-entry'
  | 'rollback'
  | 'equivocation';

export class TransparencyError extends Error {
  constructor(
    readonly code: TransparencyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TransparencyError';
  }
}

export interface ConsistencyProof {
  readonly from: number;
  readonly proof: readonly Uint8Array[];
}

export interface VersionProof {
  readonly version: number;
  readonly ipk: Uint8Array;
  readonly opening: Uint8Array;
  readonly entry: Uint8Array;
  readonly index: number;
  readonly inclusion: readonly Uint8Array[];
  /** The Follows for a rotation entry. */
  readonly follows: Uint8Array | null;
}

/** What a directory lookup returns (F7): versions newer than the caller's, newest last. */
export interface LookupBundle {
  readonly namespace: string;
  readonly name: string;
  readonly checkpoint: string;
  readonly consistency: ConsistencyProof | null;
  readonly versions: readonly VersionProof[];
}

export type KeyChange = 'first-seen' | 'same' | 'rotated' | 'reset';

export interface LookupResult {
  readonly ipk: Uint8Array;
  readonly version: number;
  readonly index: number;
  readonly change: KeyChange;
  /** Human-readable alerts (a key change without a valid Follows, a gap in the history). */
  readonly alerts: readonly string[];
  readonly checkpoint: Checkpoint;
}

export type PeerCheckpoint =
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'other-directory' }
  | { readonly kind: 'equal' }
  | { readonly kind: 'split-view'; readonly mine: string; readonly theirs: string }
  /** Ask the directory for a consistency proof between the two sizes, then resolvePeerCheckpoint. */
  | { readonly kind: 'need-proof'; readonly from: number; readonly to: number };

interface NameRecord {
  version: number;
  ipk: Uint8Array;
  leaf: Uint8Array;
}

// ---- JSON forms (base64url bytes) ------------------------------------------------------------

const MAX_VERSIONS = 64;
const MAX_PATH = 64;

function b(x: unknown): Uint8Array | null {
  return typeof x === 'string' ? fromBase64Url(x) : null;
}

function nat(x: unknown): number | null {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : null;
}

function path(x: unknown): Uint8Array[] | null {
  if (!Array.isArray(x) || x.length > MAX_PATH) return null;
  const out = x.map(b);
  return out.every((h) => h !== null && h.length === HASH_BYTES) ? (out as Uint8Array[]) : null;
}

export function consistencyToJson(c: ConsistencyProof): { from: number; proof: string[] } {
  return { from: c.from, proof: c.proof.map(toBase64Url) };
}

export function consistencyFromJson(x: unknown): ConsistencyProof | null {
  if (typeof x !== 'object' || x === null) return null;
  const o = x as Record<string, unknown>;
  const from = nat(o.from);
  const proof = path(o.proof);
  return from === null || proof === null ? null : { from, proof };
}

export function bundleToJson(bundle: LookupBundle): Record<string, unknown> {
  return {
    namespace: bundle.namespace,
    name: bundle.name,
    checkpoint: bundle.checkpoint,
    consistency: bundle.consistency === null ? null : consistencyToJson(bundle.consistency),
    versions: bundle.versions.map((v) => ({
      version: v.version,
      ipk: toBase64Url(v.ipk),
      opening: toBase64Url(v.opening),
      entry: toBase64Url(v.entry),
      index: v.index,
      inclusion: v.inclusion.map(toBase64Url),
      follows: v.follows === null ? null : toBase64Url(v.follows),
    })),
  };
}

/** Parses a bundle's JSON form; null when any field is missing or malformed. */
export function bundleFromJson(x: unknown): LookupBundle | null {
  if (typeof x !== 'object' || x === null) return null;
  const o = x as Record<string, unknown>;
  if (typeof o.namespace !== 'string' || typeof o.name !== 'string' || typeof o.checkpoint !== 'string') return null;
  const consistency = o.consistency === null || o.consistency === undefined ? null : consistencyFromJson(o.consistency);
  if (o.consistency !== null && o.consistency !== undefined && consistency === null) return null;
  if (!Array.isArray(o.versions) || o.versions.length === 0 || o.versions.length > MAX_VERSIONS) return null;
  const versions: VersionProof[] = [];
  for (const v of o.versions as unknown[]) {
    if (typeof v !== 'object' || v === null) return null;
    const r = v as Record<string, unknown>;
    const version = nat(r.version);
    const ipk = b(r.ipk);
    const opening = b(r.opening);
    const entry = b(r.entry);
    const index = nat(r.index);
    const inclusion = path(r.inclusion);
    const follows = r.follows === null || r.follows === undefined ? null : b(r.follows);
    if (version === null || ipk === null || opening === null || entry === null || index === null || inclusion === null) return null;
    if (r.follows !== null && r.follows !== undefined && follows === null) return null;
    versions.push({ version, ipk, opening, entry, index, inclusion, follows });
  }
  return { namespace: o.namespace, name: o.name, checkpoint: o.checkpoint, consistency, versions };
}

// ---- the verifier ------------------------------------------------------------------------------

export interface LogVerifierJson {
  origin: string;
  logKey: string;
  checkpoint: string | null;
  names: Record<string, { version: number; ipk: string; leaf: string }>;
}

function nameKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export class LogVerifier {
  private held: Checkpoint | null = null;
  private readonly names = new Map<string, NameRecord>();

  constructor(
    readonly origin: string,
    readonly logKey: Uint8Array,
  ) {
    if (logKey.length !== 32) throw new RangeError('the log key is a 32-byte Ed25519 public key');
  }

  static fromJSON(j: LogVerifierJson): LogVerifier {
    const key = fromBase64Url(j.logKey);
    if (key === null) throw new RangeError('bad log key');
    const v = new LogVerifier(j.origin, key);
    if (j.checkpoint !== null) {
      const c = verifyCheckpoint(j.checkpoint, j.origin, key);
      if (c === null) throw new TransparencyError('bad-checkpoint', 'the stored checkpoint does not verify');
      v.held = c;
    }
    for (const [k, r] of Object.entries(j.names)) {
      const ipk = fromBase64Url(r.ipk);
      const leaf = fromBase64Url(r.leaf);
      if (ipk !== null && leaf !== null) v.names.set(k, { version: r.version, ipk, leaf });
    }
    return v;
  }

  toJSON(): LogVerifierJson {
    const names: LogVerifierJson['names'] = {};
    for (const [k, r] of this.names) names[k] = { version: r.version, ipk: toBase64Url(r.ipk), leaf: toBase64Url(r.leaf) };
    return { origin: this.origin, logKey: toBase64Url(this.logKey), checkpoint: this.held?.text ?? null, names };
  }

  /** The newest verified checkpoint, or null before the first lookup. */
  get checkpoint(): Checkpoint | null {
    return this.held;
  }

  /** The version and key last accepted for a name. */
  known(namespace: string, name: string): { version: number; ipk: Uint8Array } | null {
    const r = this.names.get(nameKey(namespace, name));
    return r === undefined ? null : { version: r.version, ipk: r.ipk };
  }

  private parse(text: string): Checkpoint {
    const c = verifyCheckpoint(text, this.origin, this.logKey);
    if (c === null) throw new TransparencyError('bad-checkpoint', 'the checkpoint does not verify under the pinned log key');
    return c;
  }

  /**
   * Which checkpoint to hold after seeing `next` (with a consistency proof from the held size):
   * the newer one when consistent; throws split-view / bad-consistency otherwise.
   */
  private advance(next: Checkpoint, consistency: ConsistencyProof | null): Checkpoint {
    const held = this.held;
    if (held === null) return next;
    if (next.size === held.size) {
      if (!bytesEqual(next.root, held.root)) throw new TransparencyError('split-view', `two different trees of size ${held.size} signed by ${this.origin}`);
      return held;
    }
    const [small, big] = next.size > held.size ? [held, next] : [next, held];
    if (consistency === null || consistency.from !== small.size) {
      throw new TransparencyError('bad-consistency', `no consistency proof from ${small.size} to ${big.size}`);
    }
    if (!verifyConsistency(small.size, big.size, consistency.proof, small.root, big.root)) {
      throw new TransparencyError('split-view', `the checkpoints of size ${small.size} and ${big.size} are not consistent`);
    }
    return big;
  }

  /** Moves to `text` if it is newer and consistent with the held checkpoint. */
  updateCheckpoint(text: string, consistency: ConsistencyProof | null): Checkpoint {
    this.held = this.advance(this.parse(text), consistency);
    return this.held;
  }

  /**
   * F7: verifies a lookup bundle for (namespace, name) and, only when everything holds, adopts its
   * checkpoint and the name's newest version. Throws TransparencyError on any failed check.
   */
  verifyLookup(bundle: LookupBundle, namespace: string, name: string): LookupResult {
    if (bundle.namespace !== namespace || bundle.name !== name) throw new TransparencyError('bad-bundle', 'the bundle is for another name');
    if (bundle.versions.length === 0) throw new TransparencyError('bad-bundle', 'the bundle has no versions');
    const cp = this.parse(bundle.checkpoint);
    const nextHeld = this.advance(cp, bundle.consistency);
    const label = nameLabel(namespace, name);
    const known = this.names.get(nameKey(namespace, name)) ?? null;
    let prev: NameRecord | null = known;
    let sawGap = false;
    const alerts: string[] = [];
    let change: KeyChange = known === null ? 'first-seen' : 'same';
    let last: { v: (typeof bundle.versions)[number]; leaf: Uint8Array } | null = null;
    for (const v of bundle.versions) {
      const entry = decodeEntry(v.entry);
      if (entry === null) throw new TransparencyError('bad-entry', `version ${v.version}: the log entry is malformed`);
      if (entry.namespace !== namespace || !bytesEqual(entry.label, label) || entry.version !== v.version) {
        throw new TransparencyError('bad-entry', `version ${v.version}: the log entry is for another name or version`);
      }
      if (v.opening.length !== OPENING_BYTES || v.ipk.length !== 32 || !bytesEqual(commitValue(v.opening, label, v.version, v.ipk), entry.commitment)) {
        throw new TransparencyError('bad-commitment', `version ${v.version}: the commitment does not open to the key`);
      }
      const leaf = leafHash(v.entry);
      if (!verifyInclusion(leaf, v.index, cp.size, v.inclusion, cp.root)) {
        throw new TransparencyError('bad-inclusion', `version ${v.version}: the entry is not in the signed tree`);
      }
      if (last !== null && v.version !== last.v.version + 1) throw new TransparencyError('bad-bundle', 'versions must be consecutive');
      if (entry.type === 'register' && v.version !== 1) throw new TransparencyError('bad-entry', 'a register entry must be version 1');
      if (prev !== null && v.version <= prev.version) {
        if (v.version === prev.version && !bytesEqual(v.ipk, prev.ipk)) {
          throw new TransparencyError('equivocation', `version ${v.version} was served with two different keys`);
        }
        last = { v, leaf };
        continue;
      }
      const linked = prev !== null && v.version === prev.version + 1;
      if (prev !== null && !linked) sawGap = true;
      if (linked && !bytesEqual(entry.prev, prev!.leaf)) throw new TransparencyError('bad-entry', `version ${v.version} does not chain to version ${prev!.version}`);
      if (prev !== null) {
        if (bytesEqual(v.ipk, prev.ipk)) {
          // same key re-logged: nothing changes for contacts
        } else if (linked && entry.type === 'rotate' && v.follows !== null && bytesEqual(followsDigest(v.follows), entry.evidence)) {
          const f = verifyFollows(v.follows);
          if (f !== null && bytesEqual(f.a, prev.ipk) && bytesEqual(f.b, v.ipk)) {
            if (change !== 'reset') change = 'rotated';
          } else {
            change = 'reset';
            alerts.push(`${name}: version ${v.version} changed the key with an invalid "follows" attestation`);
          }
        } else {
          change = 'reset';
          alerts.push(`${name}: version ${v.version} changed the key without a "follows" signed by the previous key`);
        }
      }
      prev = { version: v.version, ipk: v.ipk, leaf };
      last = { v, leaf };
    }
    if (known !== null && last!.v.version < known.version) {
      throw new TransparencyError('rollback', `the directory served version ${last!.v.version} after version ${known.version}`);
    }
    if (sawGap) alerts.push(`${name}: the key history has a gap; the change could not be checked`);
    // Everything verified: adopt.
    this.held = nextHeld;
    const current = prev!;
    this.names.set(nameKey(namespace, name), current);
    return { ipk: current.ipk, version: current.version, index: last!.v.index, change, alerts, checkpoint: cp };
  }

  // ---- gossip --------------------------------------------------------------------------------

  /** Compares a checkpoint a peer sent with the held one (no state change). */
  checkPeerCheckpoint(text: string): PeerCheckpoint {
    if (checkpointOrigin(text) !== this.origin) return { kind: 'other-directory' };
    const c = verifyCheckpoint(text, this.origin, this.logKey);
    if (c === null) return { kind: 'invalid', reason: 'the checkpoint signature does not verify' };
    const held = this.held;
    if (held === null) return { kind: 'need-proof', from: 0, to: c.size };
    if (c.size === held.size) return bytesEqual(c.root, held.root) ? { kind: 'equal' } : { kind: 'split-view', mine: held.text, theirs: text };
    return c.size > held.size ? { kind: 'need-proof', from: held.size, to: c.size } : { kind: 'need-proof', from: c.size, to: held.size };
  }

  /**
   * With the directory's consistency proof between the two sizes: 'consistent' (and the newer
   * checkpoint is kept) or 'split-view' (the directory cannot prove the peer's tree extends ours
   * or the other way round: it showed us different logs).
   */
  resolvePeerCheckpoint(text: string, proof: readonly Uint8Array[]): { kind: 'consistent' } | { kind: 'split-view'; mine: string; theirs: string } {
    const c = this.parse(text);
    const held = this.held;
    if (held === null) {
      this.held = c;
      return { kind: 'consistent' };
    }
    try {
      const from = Math.min(c.size, held.size);
      this.held = this.advance(c, { from, proof });
      return { kind: 'consistent' };
    } catch (e) {
      if (e instanceof TransparencyError && (e.code === 'split-view' || e.code === 'bad-consistency')) return { kind: 'split-view', mine: held.text, theirs: text };
      throw e;
    }
  }
}

// ---- owner monitoring ------------------------------------------------------------------------

export interface MonitorAlert {
  readonly index: number;
  readonly namespace: string;
  readonly label: string;
  readonly version: number;
  readonly reason: string;
}

export interface LogMonitorJson {
  origin: string;
  logKey: string;
  size: number;
  range: string[];
  checkpoint: string | null;
  /** label hex → version → commitment hex that the owner registered. */
  own: Record<string, Record<string, string>>;
}

export class LogMonitor {
  private range = CompactRange.empty();
  private held: Checkpoint | null = null;
  private readonly own = new Map<string, Map<number, string>>();

  constructor(
    readonly origin: string,
    readonly logKey: Uint8Array,
  ) {}

  static fromJSON(j: LogMonitorJson): LogMonitor {
    const key = fromBase64Url(j.logKey);
    if (key === null) throw new RangeError('bad log key');
    const m = new LogMonitor(j.origin, key);
    const hashes = j.range.map((h) => fromBase64Url(h));
    const range = hashes.every((h) => h !== null) ? CompactRange.restore(j.size, hashes as Uint8Array[]) : null;
    if (range === null) throw new RangeError('bad monitor range');
    m.range = range;
    m.held = j.checkpoint === null ? null : verifyCheckpoint(j.checkpoint, j.origin, key);
    for (const [label, versions] of Object.entries(j.own)) m.own.set(label, new Map(Object.entries(versions).map(([v, c]) => [Number(v), c])));
    return m;
  }

  toJSON(): LogMonitorJson {
    const own: LogMonitorJson['own'] = {};
    for (const [label, versions] of this.own) own[label] = Object.fromEntries([...versions].map(([v, c]) => [String(v), c]));
    return { origin: this.origin, logKey: toBase64Url(this.logKey), size: this.range.size, range: this.range.hashes().map(toBase64Url), checkpoint: this.held?.text ?? null, own };
  }

  /** Entries up to this index have been checked. */
  get size(): number {
    return this.range.size;
  }

  get checkpoint(): Checkpoint | null {
    return this.held;
  }

  /** Records a version the owner registered (its commitment is what the log must show). */
  expect(namespace: string, name: string, version: number, commitment: Uint8Array): void {
    const label = toHex(nameLabel(namespace, name));
    let m = this.own.get(label);
    if (m === undefined) this.own.set(label, (m = new Map()));
    m.set(version, toHex(commitment));
  }

  /**
   * Checks the entries [size, checkpoint size) against the checkpoint: they must extend the tree
   * checked so far to exactly the signed root (which also proves the log stayed append-only).
   * Returns alerts for entries under the owner's labels that the owner did not register. On a
   * mismatch it throws and keeps its state.
   */
  process(entries: readonly Uint8Array[], checkpointText: string): MonitorAlert[] {
    const cp = verifyCheckpoint(checkpointText, this.origin, this.logKey);
    if (cp === null) throw new TransparencyError('bad-checkpoint', 'the checkpoint does not verify under the pinned log key');
    if (cp.size < this.range.size) throw new TransparencyError('rollback', `the log shrank from ${this.range.size} to ${cp.size} entries`);
    if (this.range.size + entries.length !== cp.size) throw new TransparencyError('bad-bundle', `expected ${cp.size - this.range.size} entries, got ${entries.length}`);
    const next = this.range.clone();
    const alerts: MonitorAlert[] = [];
    for (const bytes of entries) {
      const index = next.size;
      next.append(leafHash(bytes));
      const e = decodeEntry(bytes);
      if (e === null) throw new TransparencyError('bad-entry', `entry ${index} is malformed`);
      const label = toHex(e.label);
      const mine = this.own.get(label);
      if (mine === undefined) continue;
      const want = mine.get(e.version);
      if (want === undefined || want !== toHex(e.commitment)) {
        alerts.push({ index, namespace: e.namespace, label, version: e.version, reason: `entry ${index} sets version ${e.version} of your name to a key you did not register` });
      }
    }
    if (!bytesEqual(next.root(), cp.root)) {
      throw new TransparencyError(this.held !== null ? 'split-view' : 'bad-consistency', `the entries do not produce the signed root of size ${cp.size}`);
    }
    this.range = next;
    this.held = cp;
    return alerts;
  }
}
