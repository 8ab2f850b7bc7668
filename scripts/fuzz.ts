/**
 * `npm run fuzz [iterations] [seed]`: classify ≥ 1M mutated envelopes with the node:crypto
 * provider (the fast path) and report. Exits non-zero on any throw or state change.
 */
import { nodeProvider } from '../packages/client/src/crypto/node-provider.ts';
import { fuzzEnvelopes } from '../packages/protocol/test/fuzz-harness.ts';

const iterations = Number(process.argv[2] ?? 1_000_000);
const seed = Number(process.argv[3] ?? (Date.now() & 0xffffff));
console.log(`fuzzing ${iterations.toLocaleString()} mutated envelopes (seed ${seed})…`);
const started = performance.now();
const report = await fuzzEnvelopes(nodeProvider, iterations, seed, (done) => {
  const rate = done / ((performance.now() - started) / 1000);
  process.stderr.write(`  ${done.toLocaleString()} done, ${Math.round(rate).toLocaleString()}/s\n`);
});
const seconds = (performance.now() - started) / 1000;
console.log(
  `done in ${seconds.toFixed(1)} s: readable ${report.readable}, badly-formed ${report.badlyFormed}, ` +
    `not-for-me ${report.notForMe}, throws ${report.throws}, state changed: ${report.stateChanged}`,
);
if (report.throws > 0 || report.stateChanged) {
  console.error(`FAILED (replay with: npm run fuzz ${iterations} ${seed})`);
  process.exit(1);
}
