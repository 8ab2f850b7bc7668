// HintTable.addWindow (the indexing loop, one MAC per block read in place) holds exactly the
// slots listenedIndices lists, each found by its full hint, whatever the window's gaps.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nobleProvider as crypto } from '../src/index.ts';
import { HintTable, computeHint, listenedIndices, markSeen, windowAt, type HintReceiveState } from '../src/hints.ts';

describe('HintTable.addWindow', () => {
  it('indexes exactly the listened slots of windows with gaps, beside add() per slot', () => {
    const hour = 493_000;
    let state: HintReceiveState = { hours: [] };
    // A window with a pattern of arrivals: gaps below the highest, one far ahead.
    for (const index of [0, 1, 3, 4, 9, 12, 13, 20, 40, 41, 47]) state = markSeen(state, hour, index) ?? state;
    const windows = [windowAt(state, hour), windowAt(state, hour + 1)];
    for (const w of windows) {
      const key = crypto.randomBytes(32);
      const byWindow = new HintTable<string>(crypto);
      const bySlot = new HintTable<string>(crypto);
      byWindow.addWindow('c', key, w);
      const listened = listenedIndices(w);
      for (const index of listened) bySlot.add('c', key, { hour: w.hour, index });
      assert.equal(byWindow.size, listened.length);
      assert.equal(byWindow.size, bySlot.size);
      for (const index of listened) {
        const hint = computeHint(crypto, key, w.hour, index);
        assert.deepEqual(byWindow.lookup(hint), { owner: 'c', slot: { hour: w.hour, index } });
      }
      // A slot not listened for (seen, or beyond the window) is not there.
      for (const index of [0, 3, 47, w.highest + 33]) {
        if (listened.includes(index)) continue;
        assert.equal(byWindow.lookup(computeHint(crypto, key, w.hour, index)), null, `index ${index}`);
      }
    }
  });
});

describe('HintTable: a dropped hour table reused for a new hour', () => {
  it('is emptied in pieces first, and holds nothing of the hour it held before', () => {
    // One owner: each hour then fits the 64-slot table the dropped one was, so it is reused.
    const table = new HintTable<string>(crypto);
    const key = crypto.randomBytes(32);
    const fresh = (hour: number) => ({ hour, highest: -1, seenMask: 0 });
    table.addWindow('a', key, fresh(10));
    table.addWindow('a', key, fresh(11));
    table.dropHoursBefore(11);
    assert.ok(table.spareDirty, 'the dropped table waits to be emptied');
    let pieces = 0;
    while (table.spareDirty) {
      assert.ok(table.clearSpare(16) > 0);
      pieces++;
    }
    assert.equal(pieces, 4, 'a 64-slot table in pieces of 16');
    assert.equal(table.clearSpare(16), 0, 'nothing left to empty');
    table.addWindow('a', key, fresh(12));
    assert.ok(!table.spareDirty);
    assert.equal(table.size, 64);
    for (let index = 0; index < 32; index++) {
      // Unconfirmed candidates too: a stale entry left in the reused table would show here.
      assert.deepEqual(table.candidates(computeHint(crypto, key, 10, index)), [], 'dropped hour');
      assert.deepEqual(table.lookup(computeHint(crypto, key, 11, index)), { owner: 'a', slot: { hour: 11, index } });
      assert.deepEqual(table.lookup(computeHint(crypto, key, 12, index)), { owner: 'a', slot: { hour: 12, index } });
    }
  });
});
