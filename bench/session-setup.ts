/**
 * Session setup, broken down: `node --import tsx bench/session-setup.ts [runs]`.
 *
 * The figure compared with libsignal is "invitation → first message read": Alice accepts Bob's
 * invitation text (parse, signature check, PQXDH with ML-KEM, the first ratchet message, HPKE
 * seal) and Bob reads that first envelope (HPKE open, PQXDH, first ratchet step). Creating the
 * invitation is timed on its own row: libsignal's setup figure leaves out the bundle's key
 * generation and signatures as well (bench/libsignal/libsignal-bench.ts, newSession).
 *
 * The breakdown wraps the provider so every primitive call is timed where it happens (with its
 * key imports); "protocol code" is the rest: protobuf parsing and serialization, padding, the
 * engine's bookkeeping (hint table, indexes). The floor is the time spent in primitives.
 */
import { pathToFileURL } from 'node:url';
import { nodeProvider } from '@umbra/crypto-node';
import { Engine, type CryptoProvider } from '../packages/protocol/src/index.ts';

const T0 = Date.UTC(2026, 10, 22, 12, 30);

/** Which row of the breakdown a provider method's time goes to. */
const CATEGORY: Record<string, string> = {
  ed25519Verify: 'signature check (Ed25519 verify)',
  ed25519Sign: 'signature (Ed25519 sign)',
  x25519: 'X25519 DH (PQXDH + first ratchet step)',
  ed25519PublicToX25519: 'identity key Ed25519 → X25519',
  ed25519SecretToX25519: 'identity key Ed25519 → X25519',
  x25519PublicKey: 'X25519 DH (PQXDH + first ratchet step)',
  x25519Generate: 'key generation (X25519, Ed25519)',
  ed25519Generate: 'key generation (X25519, Ed25519)',
  ed25519PublicKey: 'key generation (X25519, Ed25519)',
  mlKem768Generate: 'ML-KEM-768 keygen',
  mlKem768Encapsulate: 'ML-KEM-768 encaps + decaps',
  mlKem768Decapsulate: 'ML-KEM-768 encaps + decaps',
  hpkeSeal: 'HPKE seal + open (the handshake envelope)',
  hpkeOpen: 'HPKE seal + open (the handshake envelope)',
  hkdfSha256: 'HKDF / HMAC / SHA-256 (key schedule, hints, routes)',
  hmacSha256: 'HKDF / HMAC / SHA-256 (key schedule, hints, routes)',
  hmacSha512: 'HKDF / HMAC / SHA-256 (key schedule, hints, routes)',
  hmacSha512Batch: 'hint windows (hmacSha512Batch, 2 × 24 blocks)',
  sha256: 'HKDF / HMAC / SHA-256 (key schedule, hints, routes)',
  aeadSeal: 'AEAD (ratchet header + body)',
  aeadOpen: 'AEAD (ratchet header + body)',
  randomBytes: 'randomness',
};

/** A provider that forwards every call and adds its duration to `spent[category]`. */
function timedProvider(inner: CryptoProvider, spent: Map<string, number>): CryptoProvider {
  const out: Record<string, unknown> = { name: `${inner.name} (timed)` };
  for (const [name, value] of Object.entries(inner)) {
    if (typeof value !== 'function') continue;
    const category = CATEGORY[name] ?? name;
    const fn = value as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]) => {
      const t = performance.now();
      const result = fn.apply(inner, args);
      if (result instanceof Promise) {
        return result.then((v: unknown) => {
          spent.set(category, (spent.get(category) ?? 0) + performance.now() - t);
          return v;
        });
      }
      spent.set(category, (spent.get(category) ?? 0) + performance.now() - t);
      return result;
    };
  }
  return out as unknown as CryptoProvider;
}

export interface SessionSetupFigures {
  /** Median of accept + first read, untimed provider (ms): the figure beside libsignal's. */
  readonly setupMs: number;
  /** Median Bob's createInvitation (ms). */
  readonly createInvitationMs: number;
  /** Medians of Alice's acceptInvitation (parse included) and Bob's receive, instrumented runs. */
  readonly acceptMs: number;
  readonly firstReadMs: number;
  /** Median per category over the instrumented runs, accept + first read only (ms). */
  readonly breakdown: Record<string, number>;
  /** Median of the time inside primitives (ms): the floor the protocol code adds to. */
  readonly floorMs: number;
  /** Median of setup minus primitives: protobuf, padding, engine bookkeeping (ms). */
  readonly protocolCodeMs: number;
  readonly firstEnvelopeBytes: number;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function oneSetup(crypto: CryptoProvider): Promise<{ createMs: number; acceptMs: number; readMs: number; bytes: number }> {
  const bob = Engine.create(crypto, T0);
  const alice = Engine.create(crypto, T0);
  const t0 = performance.now();
  const inv = bob.createInvitation({ nowMs: T0, reusable: false, ttlSeconds: 3600, presentation: { name: 'Bob' } });
  const t1 = performance.now();
  const acc = await alice.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'Alice' } });
  const t2 = performance.now();
  const r = await bob.receive(acc.outgoing.envelope, T0);
  const t3 = performance.now();
  if (r.kind !== 'readable' || r.started === null) throw new Error(`session setup failed: ${r.kind}`);
  return { createMs: t1 - t0, acceptMs: t2 - t1, readMs: t3 - t2, bytes: acc.outgoing.envelope.length };
}

export async function benchSessionSetup(crypto: CryptoProvider, runs = 31): Promise<SessionSetupFigures> {
  for (let i = 0; i < 10; i++) await oneSetup(crypto); // warm-up (JIT, WASM)
  const setups: number[] = [];
  const creates: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs; i++) {
    const s = await oneSetup(crypto);
    setups.push(s.acceptMs + s.readMs);
    creates.push(s.createMs);
    bytes = s.bytes;
  }
  // Instrumented runs: the same flow through the timing provider (invitation creation excluded).
  const perCategory = new Map<string, number[]>();
  const floors: number[] = [];
  const rest: number[] = [];
  const accepts: number[] = [];
  const reads: number[] = [];
  for (let i = 0; i < runs; i++) {
    const spent = new Map<string, number>();
    const timed = timedProvider(crypto, spent);
    const bob = Engine.create(timed, T0);
    const alice = Engine.create(timed, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: false, ttlSeconds: 3600, presentation: { name: 'Bob' } });
    spent.clear();
    const t1 = performance.now();
    const acc = await alice.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'Alice' } });
    const t2 = performance.now();
    const r = await bob.receive(acc.outgoing.envelope, T0);
    const t3 = performance.now();
    if (r.kind !== 'readable') throw new Error('instrumented setup failed');
    accepts.push(t2 - t1);
    reads.push(t3 - t2);
    let inPrimitives = 0;
    for (const category of new Set(Object.values(CATEGORY))) {
      const ms = spent.get(category) ?? 0;
      inPrimitives += ms;
      perCategory.set(category, [...(perCategory.get(category) ?? []), ms]);
    }
    floors.push(inPrimitives);
    rest.push(t3 - t1 - inPrimitives);
  }
  const breakdown: Record<string, number> = {};
  for (const [category, values] of perCategory) breakdown[category] = median(values);
  return {
    setupMs: median(setups),
    createInvitationMs: median(creates),
    acceptMs: median(accepts),
    firstReadMs: median(reads),
    breakdown,
    floorMs: median(floors),
    protocolCodeMs: median(rest),
    firstEnvelopeBytes: bytes,
  };
}

export function printSessionSetup(f: SessionSetupFigures, libsignalMs: number | null, log: (s: string) => void = console.log): void {
  const ms = (x: number) => x.toFixed(2).padStart(7);
  log(`session setup, invitation → first message read (median):  umbra ${ms(f.setupMs)} ms   libsignal ${libsignalMs === null ? '    n/a' : ms(libsignalMs)} ms   floor (primitives alone) ${ms(f.floorMs)} ms`);
  log(`  Bob creates the invitation (not in either setup figure)  ${ms(f.createInvitationMs)} ms`);
  log(`  Alice accepts (parse, verify, PQXDH, first message, HPKE seal) ${ms(f.acceptMs)} ms;  Bob reads it (HPKE open, PQXDH, first ratchet step) ${ms(f.firstReadMs)} ms`);
  const rows = Object.entries(f.breakdown).sort((a, b) => b[1] - a[1]);
  for (const [category, value] of rows) log(`    ${category.padEnd(56)} ${ms(value)} ms`);
  log(`    ${'protocol code (protobuf, padding, engine bookkeeping)'.padEnd(56)} ${ms(f.protocolCodeMs)} ms`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const runs = Number(process.argv[2] ?? 31);
  printSessionSetup(await benchSessionSetup(nodeProvider, runs), null);
}
