import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nobleProvider } from '../src/index.ts';
import { fuzzEnvelopes } from './fuzz-harness.ts';

describe('fuzzing', () => {
  it('100,000 mutated envelopes: zero throws, state unchanged', async () => {
    const seed = Date.now() & 0xffff;
    const report = await fuzzEnvelopes(nobleProvider, 100_000, seed);
    assert.equal(report.throws, 0, `seed ${seed}`);
    assert.equal(report.stateChanged, false, `seed ${seed}`);
    assert.equal(report.readable + report.badlyFormed + report.notForMe, report.iterations);
    assert.ok(report.badlyFormed > 0 && report.notForMe > 0);
  });
});
