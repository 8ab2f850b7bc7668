/**
 * Blind-RSA token minting on the client side, per token (Blind + the issuer's BlindSign +
 * Finalize with its signature check), with the SDK's platform-neutral minter
 * (@umbra/client/http: BigInt, noble SHA-384, WebCrypto RSA-PSS verify) — the one minter in the
 * project — beside the issuer's BlindSign alone (the floor: the RSA private operation).
 *
 *   node --import tsx bench/token-mint.ts [--tokens 200] [--rounds 5]
 */
import { parseIssuerPublicKey, TokenMinter } from '../packages/client/src/http.ts';
import { tokenChallengeBytes } from '../packages/protocol/src/services/index.ts';
import { blindSign, generateIssuerKey, parseTokenRequest, truncatedTokenKeyId } from '../packages/services/src/tokens.ts';

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
const minter = new TokenMinter(await parseIssuerPublicKey(key.tokenKey), tokenChallengeBytes('issuer.bench', 'ssa.bench'));

async function mintRound(): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < TOKENS; i++) {
    const p = minter.begin();
    await p.finalize(sign(p.request));
  }
  return (performance.now() - t) / TOKENS;
}
function signRound(): number {
  const reqs = Array.from({ length: TOKENS }, () => minter.begin().request);
  const t = performance.now();
  for (const r of reqs) sign(r);
  return (performance.now() - t) / TOKENS;
}

await mintRound(); // warm-up
const m: number[] = [];
const s: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  m.push(await mintRound());
  s.push(signRound());
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`tokens per round ${TOKENS}, rounds ${ROUNDS} (alternating)`);
console.log(`minter (noble + WebCrypto), incl. BlindSign: ${median(m).toFixed(3)} ms/token (rounds: ${m.map((x) => x.toFixed(3)).join(' ')})`);
console.log(`BlindSign alone (the floor):                 ${median(s).toFixed(3)} ms/token (rounds: ${s.map((x) => x.toFixed(3)).join(' ')})`);
