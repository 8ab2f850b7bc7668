/**
 * What an over-quota token batch costs the issuer (issue 14 row 5; not part of npm test):
 *
 *   node --import tsx scripts/issuer-over-quota-cost.ts [--rounds 30]
 *
 * Starts an issuer (SQLite in a temp dir) in this process with an `ssa` quota of 50 per account,
 * then times, over `--rounds` rounds each (median and p90 of the request's wall time, client and
 * server in one process):
 *   1. a batch of 100 well-formed requests that the quota cannot cover (answer 429),
 *   2. a batch of 50 the quota covers (answer 200, 50 signatures), on a fresh account each round.
 * Only HTTP and the SDK's TokenMinter are used, so the same script measures an older issuer.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIssuerPublicKey, TokenMinter } from '../packages/client/src/http.ts';
import { b64u, startIssuer, tokenChallenge } from '../packages/services/src/index.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const ROUNDS = arg('rounds', 30);

const dir = mkdtempSync(join(tmpdir(), 'umbra-issuer-cost-'));
const issuer = await startIssuer({ db: join(dir, 'issuer.db'), quota: { ssa: 50, rsa: 50 } });
const minter = new TokenMinter(await parseIssuerPublicKey(issuer.tokenKeys.ssa), tokenChallenge(issuer.issuerName, 'ssa.example').serialize());

async function account(): Promise<string> {
  return ((await (await fetch(`${issuer.url}/v1/accounts`, { method: 'POST' })).json()) as { secret: string }).secret;
}

async function timeBatch(secret: string, n: number): Promise<{ ms: number; status: number }> {
  // `class` is what issuers before key selection by truncated_token_key_id read; newer ones ignore it.
  const body = JSON.stringify({ class: 'ssa', requests: Array.from({ length: n }, () => b64u(minter.begin().request)) });
  const t0 = performance.now();
  const res = await fetch(`${issuer.url}/v1/token-request/batch`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body,
  });
  await res.arrayBuffer();
  return { ms: performance.now() - t0, status: res.status };
}

function summary(label: string, runs: { ms: number; status: number }[]): void {
  const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
  const statuses = [...new Set(runs.map((r) => r.status))].join(',');
  console.log(`${label}: median ${ms[Math.floor(ms.length / 2)]!.toFixed(1)} ms, p90 ${ms[Math.floor(ms.length * 0.9)]!.toFixed(1)} ms (status ${statuses}, ${runs.length} rounds)`);
}

try {
  const over: { ms: number; status: number }[] = [];
  const within: { ms: number; status: number }[] = [];
  const overSecret = await account();
  await timeBatch(await account(), 10); // warm-up
  for (let i = 0; i < ROUNDS; i++) {
    over.push(await timeBatch(overSecret, 100));
    within.push(await timeBatch(await account(), 50));
  }
  summary('over-quota batch of 100', over);
  summary('in-quota batch of 50   ', within);
} finally {
  await issuer.close();
  rmSync(dir, { recursive: true, force: true });
}
