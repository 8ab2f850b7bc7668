/**
 * What an unpaid attacker makes the RSA do (not part of npm test):
 *
 *   node --import tsx scripts/rsa-unpaid-cost.ts [--seconds 5] [--concurrency 8]
 *
 * Starts an issuer and one RSA (SQLite in a temp dir) in this process, then, as an outsider with
 * a throwaway Ed25519 key and no token, sends for `--seconds` each:
 *   1. POST /v1/deliver/batch with 256 random well-formed addresses under the RSA's current kid
 *      (every item makes the old RSA resolve: one x·c1 and a seed lookup),
 *   2. POST /v1/deliver with one such address,
 * and, for scale, a batch as large as the RSA takes (its descriptor's max_batch_items) signed by
 * an SSA key it trusts: the most work one request can buy.
 * Prints requests/s, the RSA's server-side milliseconds per request (wall time in this process,
 * so client and server share the CPU: the rates are a lower bound), the status codes, and how
 * many resolves the RSA ran (when it exposes `stats`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressKeysOf, currentAddressKey, RsaClient } from '../packages/client/src/http.ts';
import { b64u, deriveAddress, generateSeed, startIssuer, startRsa } from '../packages/services/src/index.ts';
import { generateEd25519, keyidOf, signRequest } from '../packages/services/src/httpsig.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const SECONDS = arg('seconds', 5);
const CONC = arg('concurrency', 8);

const dir = mkdtempSync(join(tmpdir(), 'umbra-unpaid-'));
const issuer = await startIssuer({ db: join(dir, 'issuer.db') });
const trustedSsa = generateEd25519();
const rsa = await startRsa({ db: join(dir, 'rsa.db'), issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.rsa], trustedSsaKeys: [trustedSsa.publicKey] });
try {
  const descriptor = await new RsaClient(rsa.url).descriptor();
  const key = currentAddressKey(addressKeysOf(descriptor), 'ephemeral');
  const maxBatch = Number((descriptor.body.limits as { max_batch_items?: number } | undefined)?.max_batch_items ?? 256);
  const attacker = generateEd25519();
  const item = () => ({ addr: b64u(deriveAddress(generateSeed(), key)), ttl_s: 60, payload: b64u(new Uint8Array(64)) });
  const batchBody = new TextEncoder().encode(JSON.stringify({ items: Array.from({ length: 256 }, item) }));
  const singleBody = new TextEncoder().encode(JSON.stringify(item()));

  const stats = () => (rsa as unknown as { stats?: { resolves: number } }).stats?.resolves ?? null;

  async function run(name: string, path: string, body: Uint8Array, signer = attacker): Promise<void> {
    const statuses = new Map<number, number>();
    let n = 0;
    const resolvesBefore = stats();
    const start = performance.now();
    const end = start + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (performance.now() < end) {
          const res = await fetch(`${rsa.url}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...signRequest(signer, keyidOf(signer.publicKey), 'POST', path, body) },
            body: Buffer.from(body),
          });
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          n++;
        }
      }),
    );
    const s = (performance.now() - start) / 1000;
    const resolvesAfter = stats();
    console.log(
      `${name.padEnd(34)} ${(n / s).toFixed(1).padStart(8)} req/s   ${((s * 1000) / n).toFixed(2).padStart(7)} ms/req` +
        `   statuses ${JSON.stringify(Object.fromEntries(statuses))}` +
        (resolvesBefore === null ? '' : `   resolves ${resolvesAfter! - resolvesBefore}`),
    );
  }

  console.log(`unpaid attacker (throwaway key, no token), concurrency ${CONC}, ${SECONDS} s each`);
  await run('batch of 256 random addresses', '/v1/deliver/batch', batchBody);
  await run('single delivery, random address', '/v1/deliver', singleBody);
  const trustedBody = new TextEncoder().encode(JSON.stringify({ items: Array.from({ length: maxBatch }, item) }));
  await run(`trusted SSA, batch of ${maxBatch} (max)`, '/v1/deliver/batch', trustedBody, trustedSsa);
} finally {
  await rsa.close();
  await issuer.close();
  rmSync(dir, { recursive: true, force: true });
}
