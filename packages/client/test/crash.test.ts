/** Crash safety: ≥ 20 SIGKILLs at random points (npm run crashtest does 200+). */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCrashTest } from './crash/harness.ts';
import { killChildren } from './fixtures/children.ts';

// runCrashTest kills its peers when it returns or throws; this is for a test that timed out.
after(killChildren);

const KILLS = Number(process.env.UMBRA_CRASH_KILLS ?? 24);

test(`crash safety: ${KILLS} SIGKILLs → 0 lost, 0 duplicated, 0 ratchet desyncs`, { timeout: 180_000 }, async () => {
  const r = await runCrashTest({ kills: KILLS, seed: 20261122 });
  console.log(
    `# crash: ${r.kills} kills (${r.killsBeforeReady} during startup), ${r.aliceSent + r.bobSent} messages; lost ${r.lost}, duplicated ${r.duplicated}, ` +
      `unacked ${r.unacked}, gaps ${r.gaps}, undecryptable ${r.undecryptable}; ${(r.ms / 1000).toFixed(1)} s`,
  );
  assert.ok(r.kills >= 20);
  assert.ok(r.aliceSent > 0 && r.bobSent > 0);
  assert.equal(r.lost, 0, 'messages lost');
  assert.equal(r.duplicated, 0, 'messages duplicated');
  assert.equal(r.gaps, 0, 'numbering gaps (a send lost or repeated by its sender)');
  assert.equal(r.unacked, 0, 'messages never acknowledged');
  assert.equal(r.undecryptable, 0, 'undecryptable envelopes (ratchet desync)');
});
