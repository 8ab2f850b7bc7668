import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { EquivSchema, FollowsSchema } from '../src/wire/gen/umbra/v1/directory_pb.ts';
import { toHex, fromHex } from '../src/bytes.ts';
import {
  CompactRange,
  LogMonitor,
  LogVerifier,
  TransparencyError,
  bundleFromJson,
  bundleToJson,
  commitValue,
  consistencyProof,
  createEquiv,
  createFollows,
  createKeyPackage,
  decodeCheckpointGossip,
  decodeEntry,
  encodeCheckpointGossip,
  encodeEntry,
  followsDigest,
  inclusionProof,
  leafHash,
  nameLabel,
  signCheckpoint,
  signPop,
  treeRoot,
  verifyCheckpoint,
  verifyConsistency,
  verifyEquiv,
  verifyFollows,
  verifyInclusion,
  verifyKeyPackage,
  verifyPop,
  type EntryTypeName,
  type LookupBundle,
  type VersionProof,
} from '../src/transparency/index.ts';

const T0 = 1_700_000_000_000;

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TransparencyError, `expected TransparencyError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

function flip(b: Uint8Array, i = 0): Uint8Array {
  const c = new Uint8Array(b);
  c[i % c.length]! ^= 0x01;
  return c;
}

// RFC 6962 / certificate-transparency test leaves and roots (ct-go merkletree testdata).
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

function leaves(n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));
}

describe('RFC 9162 Merkle tree', () => {
  it('reproduces the certificate-transparency reference roots', () => {
    const ls = CT_LEAVES.map((h) => leafHash(fromHex(h)!));
    for (let n = 1; n <= 8; n++) assert.equal(toHex(treeRoot(ls, n)), CT_ROOTS[n - 1], `root of size ${n}`);
    assert.equal(toHex(treeRoot([], 0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('every inclusion proof verifies, for every size up to 40', () => {
    const ls = leaves(40);
    for (let n = 1; n <= 40; n++) {
      const root = treeRoot(ls, n);
      for (let i = 0; i < n; i++) assert.ok(verifyInclusion(ls[i]!, i, n, inclusionProof(ls, i, n), root), `leaf ${i} of ${n}`);
    }
  });

  it('every consistency proof verifies, for every pair of sizes up to 40', () => {
    const ls = leaves(40);
    for (let n = 1; n <= 40; n++) {
      for (let m = 0; m <= n; m++) {
        assert.ok(verifyConsistency(m, n, consistencyProof(ls, m, n), treeRoot(ls, m), treeRoot(ls, n)), `${m} → ${n}`);
      }
    }
  });

  it('rejects a tampered leaf, path, index, size or root', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 64 }), fc.nat(), fc.nat(), (n, ri, rj) => {
        const ls = leaves(n);
        const i = ri % n;
        const root = treeRoot(ls, n);
        const p = inclusionProof(ls, i, n);
        assert.ok(!verifyInclusion(flip(ls[i]!), i, n, p, root));
        assert.ok(!verifyInclusion(ls[i]!, i, n, p, flip(root)));
        assert.ok(!verifyInclusion(ls[i]!, (i + 1) % n, n, p, root));
        if (p.length > 0) {
          const j = rj % p.length;
          assert.ok(!verifyInclusion(ls[i]!, i, n, p.map((h, k) => (k === j ? flip(h) : h)), root));
          assert.ok(!verifyInclusion(ls[i]!, i, n, p.slice(0, -1), root));
          assert.ok(!verifyInclusion(ls[i]!, i, n, [...p, p[0]!], root));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('rejects tampered consistency proofs and forked trees', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 64 }), fc.nat(), fc.nat(), (n, rm, rj) => {
        const ls = leaves(n);
        const m = 1 + (rm % (n - 1)); // 1 ≤ m < n
        const p = consistencyProof(ls, m, n);
        const r1 = treeRoot(ls, m);
        const r2 = treeRoot(ls, n);
        assert.ok(!verifyConsistency(m, n, p, flip(r1), r2));
        assert.ok(!verifyConsistency(m, n, p, r1, flip(r2)));
        if (p.length > 0) assert.ok(!verifyConsistency(m, n, p.map((h, k) => (k === rj % p.length ? flip(h) : h)), r1, r2));
        // A fork: same first m leaves but one earlier leaf rewritten.
        const forked = [...ls];
        forked[rj % m] = flip(forked[rj % m]!);
        assert.ok(!verifyConsistency(m, n, consistencyProof(forked, m, n), r1, treeRoot(forked, n)));
      }),
      { numRuns: 200 },
    );
  });

  it('a compact range reproduces every root and survives a save/restore', () => {
    const ls = leaves(70);
    let r = CompactRange.empty();
    for (let i = 0; i < ls.length; i++) {
      r.append(ls[i]!);
      assert.equal(toHex(r.root()), toHex(treeRoot(ls, i + 1)));
      if (i % 7 === 0) r = CompactRange.restore(r.size, r.hashes())!;
    }
    assert.equal(CompactRange.restore(5, leaves(1)), null);
  });
});

// ---- a tiny in-memory directory log for the verifier tests -------------------------------

const NS = 'example.org';
const ORIGIN = 'example.org/dir';

class TestLog {
  readonly logSecret = ed25519.utils.randomSecretKey();
  readonly logKey = ed25519.getPublicKey(this.logSecret);
  readonly entries: Uint8Array[] = [];
  readonly leaves: Uint8Array[] = [];
  readonly history = new Map<string, VersionProof[]>();

  append(name: string, type: EntryTypeName, ipk: Uint8Array, follows: Uint8Array | null = null): void {
    const label = nameLabel(NS, name);
    const hist = this.history.get(name) ?? [];
    const version = hist.length + 1;
    const opening = crypto.getRandomValues(new Uint8Array(16));
    const prev = hist.length === 0 ? new Uint8Array(32) : leafHash(hist[hist.length - 1]!.entry);
    const entry = encodeEntry({
      type,
      namespace: NS,
      label,
      version,
      tsMs: T0 + this.entries.length,
      commitment: commitValue(opening, label, version, ipk),
      prev,
      evidence: follows === null ? new Uint8Array(0) : followsDigest(follows),
    });
    const index = this.entries.length;
    this.entries.push(entry);
    this.leaves.push(leafHash(entry));
    hist.push({ version, ipk, opening, entry, index, inclusion: [], follows });
    this.history.set(name, hist);
  }

  checkpoint(size = this.entries.length): string {
    return signCheckpoint(ORIGIN, size, treeRoot(this.leaves, size), this.logSecret).text;
  }

  lookup(name: string, since: number, from: number | null): LookupBundle {
    const size = this.entries.length;
    const hist = this.history.get(name)!;
    const versions = hist.filter((v) => v.version > Math.min(since, hist.length - 1)).map((v) => ({ ...v, inclusion: inclusionProof(this.leaves, v.index, size) }));
    return {
      namespace: NS,
      name,
      checkpoint: this.checkpoint(),
      consistency: from === null || from === 0 ? null : { from, proof: consistencyProof(this.leaves, from, size) },
      versions,
    };
  }
}

function keypair(): { secret: Uint8Array; pub: Uint8Array } {
  const secret = ed25519.utils.randomSecretKey();
  return { secret, pub: ed25519.getPublicKey(secret) };
}

describe('checkpoints and entries', () => {
  it('sign and verify; any change to the note is rejected', () => {
    const log = new TestLog();
    log.append('alice', 'register', keypair().pub);
    const text = log.checkpoint();
    const cp = verifyCheckpoint(text, ORIGIN, log.logKey);
    assert.ok(cp !== null);
    assert.equal(cp.size, 1);
    assert.equal(verifyCheckpoint(text.replace('\n1\n', '\n2\n'), ORIGIN, log.logKey), null);
    assert.equal(verifyCheckpoint(text, 'other.org/dir', log.logKey), null);
    assert.equal(verifyCheckpoint(text, ORIGIN, keypair().pub), null);
    const lines = text.split('\n');
    lines[2] = Buffer.from(flip(Buffer.from(lines[2]!, 'base64'))).toString('base64');
    assert.equal(verifyCheckpoint(lines.join('\n'), ORIGIN, log.logKey), null);
    assert.equal(verifyCheckpoint(text.slice(0, -10), ORIGIN, log.logKey), null);
    assert.equal(verifyCheckpoint(42, ORIGIN, log.logKey), null);
  });

  it('entries round-trip and malformed ones decode to null', () => {
    const e = {
      type: 'rotate' as const,
      namespace: NS,
      label: nameLabel(NS, 'bob'),
      version: 2,
      tsMs: T0,
      commitment: new Uint8Array(32).fill(1),
      prev: new Uint8Array(32).fill(2),
      evidence: new Uint8Array(32).fill(3),
    };
    const bytes = encodeEntry(e);
    assert.deepEqual(decodeEntry(bytes), e);
    assert.equal(decodeEntry(bytes.subarray(0, bytes.length - 1)), null);
    assert.equal(decodeEntry(new Uint8Array([...bytes, 0])), null);
    const badVersion = new Uint8Array(bytes);
    badVersion[0] = 2;
    assert.equal(decodeEntry(badVersion), null);
    const badType = new Uint8Array(bytes);
    badType[1] = 9;
    assert.equal(decodeEntry(badType), null);
    assert.equal(decodeEntry(new Uint8Array(0)), null);
  });
});

describe('attestations', () => {
  it('follows: valid, tampered, swapped', () => {
    const a = keypair();
    const b = keypair();
    const f = createFollows(a.secret, b.secret, T0, 1);
    const claim = verifyFollows(f);
    assert.ok(claim !== null);
    assert.equal(toHex(claim.a), toHex(a.pub));
    assert.equal(toHex(claim.b), toHex(b.pub));
    // Every field matters; byte flips never yield a different verified claim.
    const msg = fromBinary(FollowsSchema, f);
    for (const field of ['a', 'b', 'sigA', 'sigB'] as const) assert.equal(verifyFollows(toBinary(FollowsSchema, { ...msg, [field]: flip(msg[field]) })), null, field);
    assert.equal(verifyFollows(toBinary(FollowsSchema, { ...msg, tsMs: msg.tsMs + 1n })), null);
    assert.equal(verifyFollows(toBinary(FollowsSchema, { ...msg, seq: 2 })), null);
    for (let i = 0; i < f.length; i++) {
      const r = verifyFollows(flip(f, i));
      assert.ok(r === null || (toHex(r.a) === toHex(a.pub) && toHex(r.b) === toHex(b.pub) && r.tsMs === T0 && r.seq === 1), `byte ${i}`);
    }
    assert.equal(verifyFollows(createFollows(a.secret, a.secret, T0)), null);
    assert.equal(verifyFollows(new Uint8Array(5000)), null);
  });

  it('equiv needs both signatures, in either order', () => {
    const a = keypair();
    const b = keypair();
    const e = createEquiv(a.secret, b.secret, T0);
    assert.ok(verifyEquiv(e) !== null);
    assert.ok(verifyEquiv(createEquiv(b.secret, a.secret, T0)) !== null);
    const msg = fromBinary(EquivSchema, e);
    for (const field of ['a', 'b', 'sigA', 'sigB'] as const) assert.equal(verifyEquiv(toBinary(EquivSchema, { ...msg, [field]: flip(msg[field]) })), null, field);
    assert.equal(verifyEquiv(toBinary(EquivSchema, { ...msg, tsMs: msg.tsMs + 1n })), null);
    assert.equal(verifyEquiv(toBinary(EquivSchema, { ...msg, sigB: new Uint8Array(0) })), null);
  });

  it('proof of possession and key package binding are bound to namespace and name', () => {
    const a = keypair();
    const pop = signPop(a.secret, NS, 'alice', T0);
    assert.ok(verifyPop(a.pub, NS, 'alice', T0, pop));
    assert.ok(!verifyPop(a.pub, NS, 'alicf', T0, pop));
    assert.ok(!verifyPop(a.pub, NS, 'alice', T0 + 1, pop));
    assert.ok(!verifyPop(keypair().pub, NS, 'alice', T0, pop));
    const kp = createKeyPackage(a.secret, NS, 'alice', new Uint8Array([1, 2, 3]));
    assert.ok(verifyKeyPackage(kp, a.pub, NS, 'alice') !== null);
    assert.equal(verifyKeyPackage(kp, a.pub, NS, 'bob'), null);
    assert.equal(verifyKeyPackage(kp, keypair().pub, NS, 'alice'), null);
  });

  it('gossip frames round-trip', () => {
    const g = decodeCheckpointGossip(encodeCheckpointGossip(ORIGIN, 'x\n1\nAA==\n'));
    assert.equal(g?.origin, ORIGIN);
    assert.equal(decodeCheckpointGossip(new Uint8Array([0xff, 0xff])), null);
  });
});

describe('lookup verification (F7)', () => {
  it('verifies a lookup, then follows the log forward with consistency proofs', () => {
    const log = new TestLog();
    const alice = keypair();
    log.append('alice', 'register', alice.pub);
    log.append('bob', 'register', keypair().pub);
    const v = new LogVerifier(ORIGIN, log.logKey);
    const r = v.verifyLookup(bundleFromJson(JSON.parse(JSON.stringify(bundleToJson(log.lookup('alice', 0, null)))))!, NS, 'alice');
    assert.equal(r.change, 'first-seen');
    assert.equal(toHex(r.ipk), toHex(alice.pub));
    assert.equal(v.checkpoint?.size, 2);
    for (let i = 0; i < 5; i++) log.append(`n${i}`, 'register', keypair().pub);
    const r2 = v.verifyLookup(log.lookup('alice', 1, 2), NS, 'alice');
    assert.equal(r2.change, 'same');
    assert.equal(v.checkpoint?.size, 7);
    // State survives JSON.
    const restored = LogVerifier.fromJSON(JSON.parse(JSON.stringify(v.toJSON())));
    assert.equal(restored.checkpoint?.size, 7);
    assert.equal(restored.known(NS, 'alice')?.version, 1);
  });

  it('rejects a tampered entry, proof, opening, key or tree head, and keeps its state', () => {
    const log = new TestLog();
    log.append('alice', 'register', keypair().pub);
    log.append('bob', 'register', keypair().pub);
    log.append('carol', 'register', keypair().pub);
    const good = log.lookup('bob', 0, null);
    const v0 = good.versions[0]!;
    const cases: [string, LookupBundle, string][] = [
      ['entry label', { ...good, versions: [{ ...v0, entry: flip(v0.entry, 40) }] }, 'bad-entry'],
      ['entry commitment', { ...good, versions: [{ ...v0, entry: flip(v0.entry, 60) }] }, 'bad-commitment'],
      ['entry timestamp', { ...good, versions: [{ ...v0, entry: flip(v0.entry, 55) }] }, 'bad-inclusion'],
      ['entry truncated', { ...good, versions: [{ ...v0, entry: v0.entry.subarray(1) }] }, 'bad-entry'],
      ['inclusion', { ...good, versions: [{ ...v0, inclusion: v0.inclusion.map((h, i) => (i === 0 ? flip(h) : h)) }] }, 'bad-inclusion'],
      ['index', { ...good, versions: [{ ...v0, index: 0 }] }, 'bad-inclusion'],
      ['opening', { ...good, versions: [{ ...v0, opening: flip(v0.opening) }] }, 'bad-commitment'],
      ['key', { ...good, versions: [{ ...v0, ipk: keypair().pub }] }, 'bad-commitment'],
      ['tree head', { ...good, checkpoint: good.checkpoint.replace('\n3\n', '\n4\n') }, 'bad-checkpoint'],
      ['other name', { ...good, name: 'alice' }, 'bad-bundle'],
    ];
    const v = new LogVerifier(ORIGIN, log.logKey);
    for (const [what, bundle, want] of cases) assert.equal(code(() => v.verifyLookup(bundle, NS, 'bob')), want, what);
    assert.equal(v.checkpoint, null);
    assert.equal(v.known(NS, 'bob'), null);
    assert.equal(v.verifyLookup(good, NS, 'bob').change, 'first-seen');
  });

  it('detects a forked log (no valid consistency proof) and a rollback', () => {
    const log = new TestLog();
    const alice = keypair();
    log.append('alice', 'register', alice.pub);
    log.append('bob', 'register', keypair().pub);
    const v = new LogVerifier(ORIGIN, log.logKey);
    v.verifyLookup(log.lookup('alice', 0, null), NS, 'alice');
    // The directory rewrites history (another key for bob at index 1) and extends it.
    const fork = new TestLog();
    Object.assign(fork, { logSecret: log.logSecret, logKey: log.logKey });
    fork.append('alice', 'register', alice.pub);
    fork.entries.push(log.entries[0]!); // filler so the sizes differ
    fork.leaves.push(leafHash(new Uint8Array([9])));
    fork.append('carol', 'register', keypair().pub);
    const b = fork.lookup('alice', 0, 2);
    assert.equal(code(() => v.verifyLookup(b, NS, 'alice')), 'split-view');
    // Same size, other root: split view too.
    const same = new TestLog();
    Object.assign(same, { logSecret: log.logSecret, logKey: log.logKey });
    same.append('alice', 'register', alice.pub);
    same.append('mallory', 'register', keypair().pub);
    assert.equal(code(() => v.verifyLookup(same.lookup('alice', 0, null), NS, 'alice')), 'split-view');

    // Rollback: version 2 seen, then version 1 served alone.
    const log2 = new TestLog();
    const k1 = keypair();
    const k2 = keypair();
    log2.append('dana', 'register', k1.pub);
    const old = log2.lookup('dana', 0, null);
    log2.append('dana', 'rotate', k2.pub, createFollows(k1.secret, k2.secret, T0));
    const v2 = new LogVerifier(ORIGIN, log2.logKey);
    v2.verifyLookup(log2.lookup('dana', 0, null), NS, 'dana');
    const stale = { ...old, checkpoint: log2.checkpoint(), versions: [{ ...old.versions[0]!, inclusion: inclusionProof(log2.leaves, 0, 2) }] };
    assert.equal(code(() => v2.verifyLookup(stale, NS, 'dana')), 'rollback');
  });

  it('key rollover: a valid "follows" is accepted, a change without one raises an alert', () => {
    const log = new TestLog();
    const k1 = keypair();
    const k2 = keypair();
    const k3 = keypair();
    log.append('erin', 'register', k1.pub);
    const v = new LogVerifier(ORIGIN, log.logKey);
    v.verifyLookup(log.lookup('erin', 0, null), NS, 'erin');
    log.append('erin', 'rotate', k2.pub, createFollows(k1.secret, k2.secret, T0));
    const r = v.verifyLookup(log.lookup('erin', 1, 1), NS, 'erin');
    assert.equal(r.change, 'rotated');
    assert.deepEqual(r.alerts, []);
    assert.equal(toHex(r.ipk), toHex(k2.pub));

    log.append('erin', 'reset', k3.pub);
    const r3 = v.verifyLookup(log.lookup('erin', 2, 2), NS, 'erin');
    assert.equal(r3.change, 'reset');
    assert.equal(r3.alerts.length, 1);
    assert.match(r3.alerts[0]!, /without a "follows"/);

    // A "follows" signed by someone else's key does not count.
    const log2 = new TestLog();
    const m = keypair();
    log2.append('finn', 'register', k1.pub);
    const v2 = new LogVerifier(ORIGIN, log2.logKey);
    v2.verifyLookup(log2.lookup('finn', 0, null), NS, 'finn');
    log2.append('finn', 'rotate', k2.pub, createFollows(m.secret, k2.secret, T0));
    const bad = v2.verifyLookup(log2.lookup('finn', 1, 1), NS, 'finn');
    assert.equal(bad.change, 'reset');
    assert.match(bad.alerts[0]!, /invalid "follows"/);
  });
});

describe('gossip and split views', () => {
  it('two clients given different views detect it by exchanging checkpoints', () => {
    const honest = new TestLog();
    const evil = new TestLog();
    Object.assign(evil, { logSecret: honest.logSecret, logKey: honest.logKey });
    const alice = keypair();
    honest.append('alice', 'register', alice.pub);
    evil.append('alice', 'register', alice.pub);
    honest.append('bob', 'register', keypair().pub);
    evil.append('bob', 'register', keypair().pub); // bob's key differs in the second view
    const c1 = new LogVerifier(ORIGIN, honest.logKey);
    const c2 = new LogVerifier(ORIGIN, honest.logKey);
    c1.verifyLookup(honest.lookup('alice', 0, null), NS, 'alice');
    c2.verifyLookup(evil.lookup('alice', 0, null), NS, 'alice');
    const g = decodeCheckpointGossip(encodeCheckpointGossip(ORIGIN, c2.checkpoint!.text))!;
    const r = c1.checkPeerCheckpoint(g.checkpoint);
    assert.equal(r.kind, 'split-view');

    // Different sizes: the directory cannot produce a consistency proof between the views.
    evil.append('carol', 'register', keypair().pub);
    const c3 = new LogVerifier(ORIGIN, honest.logKey);
    c3.verifyLookup(evil.lookup('alice', 0, null), NS, 'alice');
    const need = c1.checkPeerCheckpoint(c3.checkpoint!.text);
    assert.deepEqual(need, { kind: 'need-proof', from: 2, to: 3 });
    const proofFromEvil = consistencyProof(evil.leaves, 2, 3);
    assert.equal(c1.resolvePeerCheckpoint(c3.checkpoint!.text, proofFromEvil).kind, 'split-view');
    assert.equal(c1.checkpoint!.size, 2);

    // Honest growth is accepted and the newest checkpoint kept.
    honest.append('dave', 'register', keypair().pub);
    const c4 = new LogVerifier(ORIGIN, honest.logKey);
    c4.verifyLookup(honest.lookup('alice', 0, null), NS, 'alice');
    assert.deepEqual(c1.checkPeerCheckpoint(c4.checkpoint!.text), { kind: 'need-proof', from: 2, to: 3 });
    assert.equal(c1.resolvePeerCheckpoint(c4.checkpoint!.text, consistencyProof(honest.leaves, 2, 3)).kind, 'consistent');
    assert.equal(c1.checkpoint!.size, 3);
    assert.equal(c1.checkPeerCheckpoint(c4.checkpoint!.text).kind, 'equal');
    assert.equal(c1.checkPeerCheckpoint(c4.checkpoint!.text.replace(ORIGIN, 'elsewhere')).kind, 'other-directory');
    assert.equal(c1.checkPeerCheckpoint(c4.checkpoint!.text.replace('\n3\n', '\n9\n')).kind, 'invalid');
  });
});

describe('owner monitoring', () => {
  it('raises an alert on an entry for its name that it did not register', () => {
    const log = new TestLog();
    const mine = keypair();
    log.append('gail', 'register', mine.pub);
    const mon = new LogMonitor(ORIGIN, log.logKey);
    const reg = log.history.get('gail')![0]!;
    mon.expect(NS, 'gail', 1, commitValue(reg.opening, nameLabel(NS, 'gail'), 1, mine.pub));
    log.append('other', 'register', keypair().pub);
    assert.deepEqual(mon.process(log.entries.slice(0), log.checkpoint()), []);
    // The directory swaps gail's key.
    log.append('gail', 'reset', keypair().pub);
    log.append('x', 'register', keypair().pub);
    const restored = LogMonitor.fromJSON(JSON.parse(JSON.stringify(mon.toJSON())));
    const alerts = restored.process(log.entries.slice(2), log.checkpoint());
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.version, 2);
    assert.equal(alerts[0]!.index, 2);
    assert.equal(restored.size, 4);
  });

  it('rejects entries that do not produce the signed root', () => {
    const log = new TestLog();
    log.append('a', 'register', keypair().pub);
    log.append('b', 'register', keypair().pub);
    const mon = new LogMonitor(ORIGIN, log.logKey);
    const tampered = [log.entries[0]!, flip(log.entries[1]!, 50)];
    assert.throws(() => mon.process(tampered, log.checkpoint()), TransparencyError);
    assert.throws(() => mon.process(log.entries.slice(0, 1), log.checkpoint()), TransparencyError);
    assert.equal(mon.size, 0);
    assert.deepEqual(mon.process(log.entries, log.checkpoint()), []);
    assert.equal(toHex(sha256(new Uint8Array(0))).length, 64);
  });
});
