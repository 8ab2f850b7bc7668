/**
 * Blind-RSA token minting on the client side, per token (Blind + the issuer's BlindSign +
 * Finalize with its signature check): the SDK's platform-neutral minter (@umbra/client/http:
 * BigInt, noble SHA-384, WebCrypto RSA-PSS verify) beside the node:crypto one the services keep
 * for their tests (services/src/tokens.ts). Alternating rounds; BlindSign is the same in both.
 *
 *   node --import tsx bench/token-mint.ts [--tokens 200] [--rounds 5]
 */
import { parseIssuerPublicKey as parseClientKey, TokenMinter as ClientMinter } from '../packages/client/src/http.ts';
import { tokenChallengeBytes } from '../packages/protocol/src/services/index.ts';
import { blindSign, generateIssuerKey, parseIssuerPublicKey as parseNodeKey, parseTokenRequest, tokenChallenge, TokenMinter as NodeMinter, truncatedTokenKeyId } from '../packages/services/src/tokens.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const TOKENS = arg('tokens', 200);
const ROUNDS = arg('rounds', 5);

const key = generateIssuerKey();
const keys = new Map([[truncatedTokenKeyId(key), key]]);
const sign = (request: Uint8Array): Uint8Array => {
  const p = parseTokenRequest(request, keys);
  if (p.kind !== 'ok') throw new Error(p.reason);
  return blindSign(key, p.blindedMsg);
};
const clientMinter = new ClientMinter(await parseClientKey(key.tokenKey), tokenChallengeBytes('issuer.bench', 'ssa.bench'));
const nodeMinter = new NodeMinter(parseNodeKey(key.tokenKey), tokenChallenge('issuer.bench', 'ssa.bench'));

async function client(): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < TOKENS; i++) {
    const p = clientMinter.begin();
    await p.finalize(sign(p.request));
  }
  return (performance.now() - t) / TOKENS;
}
function node(): number {
  const t = performance.now();
  for (let i = 0; i < TOKENS; i++) {
    const p = nodeMinter.begin();
    p.finalize(sign(p.request));
  }
  return (performance.now() - t) / TOKENS;
}

// BlindSign alone, to read the minters' own share.
const signOnly = (() => {
  const reqs = Array.from({ length: TOKENS }, () => nodeMinter.begin().request);
  const t = performance.now();
  for (const r of reqs) sign(r);
  return (performance.now() - t) / TOKENS;
})();

await client();
node(); // warm-up
const c: number[] = [];
const n: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  c.push(await client());
  n.push(node());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`tokens per round ${TOKENS}, rounds ${ROUNDS}; BlindSign alone ${signOnly.toFixed(3)} ms/token`);
console.log(`client minter (noble + WebCrypto): ${median(c).toFixed(3)} ms/token incl. BlindSign (rounds: ${c.map((x) => x.toFixed(3)).join(' ')})`);
console.log(`node minter (node:crypto):         ${median(n).toFixed(3)} ms/token incl. BlindSign (rounds: ${n.map((x) => x.toFixed(3)).join(' ')})`);
