/**
 * Primitive throughput of the two CryptoProviders (ops/s, median of 5 runs of ~200 ms each).
 *
 *   node --import tsx bench/crypto-primitives.ts
 *
 * `measurePrimitives()` is exported for other bench scripts.
 */
import { pathToFileURL } from 'node:url';
import { nobleProvider } from '../packages/protocol/src/crypto/noble.ts';
import type { CryptoProvider } from '../packages/protocol/src/crypto/provider.ts';
import { nodeProvider } from '../packages/client/src/crypto/node-provider.ts';

export interface MeasureOptions {
  /** Timed runs per case; the median is reported. Default 5. */
  readonly runs?: number;
  /** Length of one run in milliseconds. Default 200. */
  readonly runMs?: number;
}

type Op = () => unknown;
type AsyncOp = () => Promise<unknown>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function timeSync(op: Op, runs: number, runMs: number): number {
  for (let i = 0; i < 20; i++) op(); // warm-up
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    let n = 0;
    const start = performance.now();
    let elapsed: number;
    do {
      for (let i = 0; i < 10; i++) op();
      n += 10;
      elapsed = performance.now() - start;
    } while (elapsed < runMs);
    rates.push((n / elapsed) * 1000);
  }
  return median(rates);
}

async function timeAsync(op: AsyncOp, runs: number, runMs: number): Promise<number> {
  for (let i = 0; i < 5; i++) await op();
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    let n = 0;
    const start = performance.now();
    let elapsed: number;
    do {
      await op();
      n++;
      elapsed = performance.now() - start;
    } while (elapsed < runMs);
    rates.push((n / elapsed) * 1000);
  }
  return median(rates);
}

interface Case {
  readonly name: string;
  /** Builds the operation for one provider (setup is not timed). */
  readonly build: (p: CryptoProvider) => { sync: Op } | { async: AsyncOp };
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`bench self-check failed: ${what}`);
}

const CASES: readonly Case[] = [
  { name: 'x25519Generate', build: (p) => ({ sync: () => p.x25519Generate() }) },
  {
    name: 'x25519 DH',
    build: (p) => {
      const a = p.x25519Generate();
      const b = p.x25519Generate();
      return { sync: () => p.x25519(a.secretKey, b.publicKey) };
    },
  },
  {
    name: 'x25519 DH (new peer key array each call)',
    build: (p) => {
      const a = p.x25519Generate();
      const b = p.x25519Generate();
      return { sync: () => p.x25519(a.secretKey, b.publicKey.slice()) };
    },
  },
  {
    name: 'ed25519 sign 100 B',
    build: (p) => {
      const k = p.ed25519Generate();
      const msg = p.randomBytes(100);
      return { sync: () => p.ed25519Sign(k.secretKey, msg) };
    },
  },
  {
    name: 'ed25519 verify 100 B',
    build: (p) => {
      const k = p.ed25519Generate();
      const msg = p.randomBytes(100);
      const sig = p.ed25519Sign(k.secretKey, msg);
      check(p.ed25519Verify(k.publicKey, msg, sig), 'verify');
      return { sync: () => p.ed25519Verify(k.publicKey, msg, sig) };
    },
  },
  {
    name: 'hkdf → 32 B',
    build: (p) => {
      const ikm = p.randomBytes(32);
      const salt = p.randomBytes(32);
      const info = new TextEncoder().encode('umbra bench');
      return { sync: () => p.hkdfSha256(ikm, salt, info, 32) };
    },
  },
  {
    name: 'hmac 32 B',
    build: (p) => {
      const key = p.randomBytes(32);
      const msg = p.randomBytes(32);
      return { sync: () => p.hmacSha256(key, msg) };
    },
  },
  {
    name: 'aead seal+open 100 B',
    build: (p) => {
      const key = p.randomBytes(32);
      const nonce = p.randomBytes(12);
      const pt = p.randomBytes(100);
      const aad = p.randomBytes(16);
      return {
        sync: () => {
          const ct = p.aeadSeal(key, nonce, pt, aad);
          return p.aeadOpen(key, nonce, ct, aad);
        },
      };
    },
  },
  {
    name: 'hpke seal 100 B',
    build: (p) => {
      const r = p.x25519Generate();
      const pt = p.randomBytes(100);
      const info = new TextEncoder().encode('info');
      return { async: () => p.hpkeSeal(r.publicKey, info, new Uint8Array(0), pt) };
    },
  },
  {
    name: 'hpke open 100 B',
    build: (p) => {
      const r = p.x25519Generate();
      const info = new TextEncoder().encode('info');
      let sealed: { enc: Uint8Array; ciphertext: Uint8Array } | undefined;
      return {
        async: async () => {
          sealed ??= await p.hpkeSeal(r.publicKey, info, new Uint8Array(0), p.randomBytes(100));
          const pt = await p.hpkeOpen(r.secretKey, sealed.enc, info, new Uint8Array(0), sealed.ciphertext);
          check(pt !== null, 'hpke open');
          return pt;
        },
      };
    },
  },
  {
    name: 'mlkem768 encaps',
    build: (p) => {
      const k = p.mlKem768Generate();
      return { sync: () => p.mlKem768Encapsulate(k.publicKey) };
    },
  },
  {
    name: 'mlkem768 decaps',
    build: (p) => {
      const k = p.mlKem768Generate();
      const e = p.mlKem768Encapsulate(k.publicKey);
      check(e !== null, 'encapsulate');
      return { sync: () => p.mlKem768Decapsulate(e!.ciphertext, k.secretKey) };
    },
  },
];

export async function measurePrimitives(
  options: MeasureOptions = {},
): Promise<Record<string, { noble: number; node: number }>> {
  const runs = options.runs ?? 5;
  const runMs = options.runMs ?? 200;
  const results: Record<string, { noble: number; node: number }> = {};
  for (const c of CASES) {
    const rate = async (p: CryptoProvider): Promise<number> => {
      const op = c.build(p);
      return 'sync' in op ? timeSync(op.sync, runs, runMs) : timeAsync(op.async, runs, runMs);
    };
    results[c.name] = { noble: Math.round(await rate(nobleProvider)), node: Math.round(await rate(nodeProvider)) };
  }
  return results;
}

async function main(): Promise<void> {
  console.log(`crypto primitives, ops/s (median of 5 × 200 ms), Node ${process.version}`);
  const results = await measurePrimitives();
  const width = Math.max(...Object.keys(results).map((k) => k.length));
  console.log(`${'primitive'.padEnd(width)}  ${'noble'.padStart(9)}  ${'node'.padStart(9)}  node/noble`);
  for (const [name, r] of Object.entries(results)) {
    const ratio = r.noble > 0 ? (r.node / r.noble).toFixed(1) : '-';
    console.log(
      `${name.padEnd(width)}  ${r.noble.toLocaleString('en-US').padStart(9)}  ${r.node.toLocaleString('en-US').padStart(9)}  ${ratio.padStart(9)}x`,
    );
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
