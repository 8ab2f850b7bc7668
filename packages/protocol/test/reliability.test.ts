/** The reliability machine, frame by frame: acks, duplicates, causal history, missing ids, retries, the window, state. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { reliability as rel, serializeConversation, toHex, wire, UmbraError, type FrameBody } from '../src/index.ts';
import { PrivateConversationStateSchema } from '../src/wire/gen/umbra/v1/state_pb.ts';

const P: rel.ReliabilityPolicy = { ...rel.DEFAULT_RELIABILITY_POLICY, ackDelayMs: 20, duplicateAckIntervalMs: 1000, missingGraceMs: 100, fastRetransmitMs: 50, retryInitialMs: 1000, retryMaxMs: 8000 };
const T = 1_800_000_000_000;
const HINT = { hour: Math.floor(T / 3_600_000), nextIndex: 0 };
const NONE: rel.KnownIds = new Map();
const id = (n: number) => Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? n & 0xff : i === 1 ? n >> 8 : 7));

function frame(messageId: Uint8Array, body: FrameBody, lamport = 1, causal: Uint8Array[] = []): wire.PrivateV1Frame {
  return wire.create(wire.PrivateV1FrameSchema, { messageId, lamport: BigInt(lamport), causalHistory: causal, sentAt: BigInt(T), body });
}
const content = (messageId: Uint8Array, lamport = 1, causal: Uint8Array[] = []) =>
  frame(messageId, { case: 'content', value: wire.create(wire.ContentSchema, { kind: { case: 'text', value: wire.create(wire.TextSchema, { body: 'x' }) } }) }, lamport, causal);
const ack = (ids: Uint8Array[]) => frame(id(999), { case: 'ack', value: wire.create(wire.AckSchema, { messageIds: ids }) });

/** A state with our frames 1..n in flight (sealed at T, hint slots 0..n-1). */
function withInFlight(n: number, state = rel.EMPTY_RELIABILITY): rel.ReliabilityState {
  let s = state;
  for (let i = 1; i <= n; i++) {
    const l = rel.nextLamport(s);
    s = rel.onSealed(l.state, { messageId: id(i), lamport: l.lamport, hintHour: HINT.hour, hintIndex: i - 1 }, T, P);
  }
  return s;
}

describe('reliability: receiving', () => {
  it('a new content frame is delivered once, advances the clock and the causal history, and is acknowledged after ackDelayMs', () => {
    const r = rel.onFrames(rel.EMPTY_RELIABILITY, [content(id(1), 5)], T, P, { known: NONE, acknowledge: true });
    assert.equal(r.effects.delivered.length, 1);
    assert.equal(r.state.lamport, 5);
    assert.deepEqual(r.state.recentIds.map(toHex), [toHex(id(1))]);
    assert.equal(r.state.ackDueAt, T + P.ackDelayMs);
    assert.equal(rel.nextDueAt(r.state), T + P.ackDelayMs);
    assert.equal(rel.due(r.state, T + 1, P, { allowed: true, sendHint: HINT }).effects.acks.length, 0, 'not yet');
    const d = rel.due(r.state, T + P.ackDelayMs, P, { allowed: true, sendHint: HINT });
    assert.deepEqual(d.effects.acks.map((a) => a.map(toHex)), [[toHex(id(1))]]);
    assert.equal(d.state.ackDueAt, null);
    assert.equal(d.state.lastAckSentAt, T + P.ackDelayMs);
    // The same id again (re-encrypted by the sender, other bytes): a duplicate message, acknowledged, not delivered.
    const again = rel.onFrames(d.state, [content(id(1), 5)], T + 50, P, { known: new Map([[toHex(id(1)), 'incoming']]), acknowledge: true });
    assert.equal(again.effects.delivered.length, 0);
    assert.equal(again.effects.duplicateMessages, 1);
    assert.deepEqual(again.state.pendingAcks.map(toHex), [toHex(id(1))]);
  });

  it('a request (acknowledge: false) is delivered but not acknowledged until accepted', () => {
    const r = rel.onFrames(rel.EMPTY_RELIABILITY, [content(id(1))], T, P, { known: NONE, acknowledge: false });
    assert.equal(r.effects.delivered.length, 1);
    assert.equal(r.state.ackDueAt, null);
    const accepted = rel.acknowledge(r.state, [id(1)], T + 5, P);
    assert.equal(accepted.ackDueAt, T + 5 + P.ackDelayMs);
  });

  it('duplicate envelopes: one ack frame per interval at most, joined to a pending ack when there is one', () => {
    let s = rel.onFrames(rel.EMPTY_RELIABILITY, [content(id(1))], T, P, { known: NONE, acknowledge: true }).state;
    s = rel.due(s, T + 20, P, { allowed: true, sendHint: HINT }).state; // the first ack went out at T+20
    let frames = 0;
    for (let t = T + 21; t < T + 3000; t += 7) {
      s = rel.onDuplicateEnvelope(s, id(1), t, P);
      const d = rel.due(s, t, P, { allowed: true, sendHint: HINT });
      frames += d.effects.acks.length;
      s = d.state;
    }
    // ~2 s of replays after the first ack: at T+1020 and T+2020, no more.
    assert.equal(frames, 2);
    // A duplicate while an ack is pending rides on it and does not move it later.
    const pending = rel.onFrames(s, [content(id(2))], T + 5000, P, { known: new Map([[toHex(id(1)), 'incoming']]), acknowledge: true }).state;
    const joined = rel.onDuplicateEnvelope(pending, id(1), T + 5001, P);
    assert.equal(joined.ackDueAt, pending.ackDueAt);
    assert.deepEqual(joined.pendingAcks.map(toHex).sort(), [toHex(id(1)), toHex(id(2))].sort());
    assert.deepEqual(rel.onDuplicateEnvelope(joined, id(1), T + 5002, P), joined, 'an id already pending adds nothing');
  });

  it('acks and causal history acknowledge our in-flight frames once; a later ack fast-retransmits an earlier frame', () => {
    const s = withInFlight(3);
    const r = rel.onFrames(s, [ack([id(3), id(3)])], T + 100, P, { known: NONE, acknowledge: true });
    assert.deepEqual(r.effects.acked.map((a) => toHex(a.messageId)), [toHex(id(3))]);
    assert.deepEqual(r.effects.fastRetransmit.map(toHex), [toHex(id(1)), toHex(id(2))]);
    assert.equal(rel.nextDueAt(r.state), T + 100);
    const implicit = rel.onFrames(r.state, [content(id(50), 9, [id(1), id(3)])], T + 110, P, { known: new Map([[toHex(id(3)), 'outgoing']]), acknowledge: true });
    assert.deepEqual(implicit.effects.acked.map((a) => toHex(a.messageId)), [toHex(id(1))], 'id 3 was acknowledged already');
    assert.equal(implicit.effects.missing.length, 0);
    assert.deepEqual(implicit.state.inFlight.map((f) => toHex(f.messageId)), [toHex(id(2))]);
  });

  it('an unknown id in the causal history is missing: requested after the grace period, with backoff, given up after 20 requests', () => {
    const r = rel.onFrames(rel.EMPTY_RELIABILITY, [content(id(2), 2, [id(1)])], T, P, { known: NONE, acknowledge: true });
    assert.deepEqual(r.effects.missing.map(toHex), [toHex(id(1))]);
    let s = r.state;
    assert.equal(rel.due(s, T + P.missingGraceMs - 1, P, { allowed: true, sendHint: HINT }).effects.retransmitRequest.length, 0);
    let requests = 0;
    let now = T + P.missingGraceMs;
    let gaveUp = 0;
    for (let round = 0; round < 40 && s.missing.length > 0; round++) {
      const d = rel.due(s, now, P, { allowed: true, sendHint: HINT });
      requests += d.effects.retransmitRequest.length;
      gaveUp += d.effects.gaveUp.length;
      s = d.state;
      now = s.missing[0]?.nextRequestAt ?? now;
    }
    assert.equal(requests, rel.MAX_RETRANSMIT_REQUESTS);
    assert.equal(gaveUp, 1);
    // Known ids and ids that arrive are not missing.
    const known = rel.onFrames(rel.EMPTY_RELIABILITY, [content(id(2), 2, [id(1)])], T, P, { known: new Map([[toHex(id(1)), 'outgoing']]), acknowledge: true });
    assert.equal(known.effects.missing.length, 0);
    const arrives = rel.onFrames(r.state, [content(id(1), 1)], T + 10, P, { known: new Map([[toHex(id(2)), 'incoming']]), acknowledge: true });
    assert.equal(arrives.state.missing.length, 0);
  });

  it('keeps at most MAX_MISSING_IDS missing ids, forgetting the oldest', () => {
    let s = rel.EMPTY_RELIABILITY;
    const forgotten: string[] = [];
    for (let i = 0; i < rel.MAX_MISSING_IDS + 10; i++) {
      const r = rel.onFrames(s, [content(id(10_000 + i), i + 1, [id(i)])], T + i, P, { known: NONE, acknowledge: true });
      forgotten.push(...r.effects.forgotten.map(toHex));
      s = r.state;
    }
    assert.equal(s.missing.length, rel.MAX_MISSING_IDS);
    assert.deepEqual(forgotten, Array.from({ length: 10 }, (_, i) => toHex(id(i))));
  });

  it('retransmission requests: in-flight ids become due now, others are handed to the caller; none when not allowed', () => {
    const s = withInFlight(2);
    const req = frame(id(77), { case: 'retransmitRequest', value: wire.create(wire.RetransmitRequestSchema, { messageIds: [id(1), id(40), new Uint8Array(3)] }) });
    const r = rel.onFrames(s, [req], T + 10, P, { known: NONE, acknowledge: true });
    assert.equal(r.effects.retransmitAnswered, 1);
    assert.deepEqual(r.effects.retransmitRequested.map(toHex), [toHex(id(40))]);
    assert.equal(rel.nextDueAt(r.state), T + 10);
    const silent = rel.onFrames(s, [req], T + 10, P, { known: NONE, acknowledge: false });
    assert.equal(silent.effects.retransmitAnswered + silent.effects.retransmitRequested.length, 0);
  });

  it('frame kinds: session resets and unknown bodies are reported, not dropped silently; gossip is handed over, not acknowledged', () => {
    const reset = frame(id(5), { case: 'sessionReset', value: wire.create(wire.SessionResetSchema, {}) });
    const unknown = frame(id(6), { case: undefined });
    const gossip = frame(id(7), { case: 'checkpointGossip', value: new Uint8Array([1, 2]) });
    const r = rel.onFrames(rel.EMPTY_RELIABILITY, [reset, unknown, gossip], T, P, { known: NONE, acknowledge: true });
    assert.deepEqual(r.effects.unhandled.map((u) => u.kind), ['session-reset', 'unknown']);
    assert.deepEqual(r.effects.gossip, [new Uint8Array([1, 2])]);
    assert.equal(r.state.pendingAcks.length, 0);
    assert.equal(rel.frameKind({ case: 'particleUpdate', value: wire.create(wire.ParticleUpdateSchema, {}) }), 'particle-update');
  });

  it('the handshake is acknowledged by any frame of the peer', () => {
    const s = rel.onHandshakeSent(rel.EMPTY_RELIABILITY, id(9), T, P);
    const d = rel.due(s, s.handshake!.nextAttemptAt, P, { allowed: true, sendHint: HINT });
    assert.equal(d.effects.handshakeRetry?.attempt, 2);
    const r = rel.onFrames(d.state, [ack([])], T + 5000, P, { known: NONE, acknowledge: true });
    assert.equal(toHex(r.effects.handshakeAcked!), toHex(id(9)));
    assert.equal(r.state.handshake, null);
  });
});

describe('reliability: sending', () => {
  it('retries back off (jittered, capped), same bytes while the hint slot is recognisable, re-encrypted after', () => {
    let s = withInFlight(1);
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const now = rel.nextDueAt(s)!;
      const d = rel.due(s, now, P, { allowed: true, sendHint: { hour: HINT.hour, nextIndex: 1 } });
      assert.equal(d.effects.retransmissions.length, 1);
      assert.equal(d.effects.retransmissions[0]!.attempt, i + 2);
      times.push(now);
      s = d.state;
    }
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    for (let i = 0; i < gaps.length; i++) {
      const base = Math.min(P.retryMaxMs, P.retryInitialMs * 2 ** (i + 1));
      assert.ok(gaps[i]! >= base * 0.75 && gaps[i]! <= base * 1.25, `gap ${gaps[i]} vs base ${base}`);
    }
    // Once the sender is more than HINT_WINDOW slots further, the receiver can no longer recognise the old bytes.
    const stale = rel.due(s, rel.nextDueAt(s)!, P, { allowed: true, sendHint: { hour: HINT.hour, nextIndex: 40 } });
    assert.equal(stale.effects.retransmissions[0]!.sameBytes, false);
    const fresh = rel.due(s, rel.nextDueAt(s)!, P, { allowed: true, sendHint: { hour: HINT.hour, nextIndex: 20 } });
    assert.equal(fresh.effects.retransmissions[0]!.sameBytes, true);
  });

  it('the window: at most maxInFlight unacknowledged, and no further ahead of the oldest than a retry can be recognised', () => {
    const p = { ...P, maxInFlight: 4 };
    assert.equal(rel.room(rel.EMPTY_RELIABILITY, p, HINT, T), 4);
    const s = withInFlight(4);
    assert.equal(rel.room(s, p, { ...HINT, nextIndex: 4 }, T), 0);
    const acked = rel.onFrames(s, [ack([id(1), id(2)])], T + 1, p, { known: NONE, acknowledge: true }).state;
    assert.equal(rel.room(acked, p, { ...HINT, nextIndex: 4 }, T + 1), 2);
    // Acks and requests used slots in between: the oldest in flight (slot 2) bounds the window.
    assert.equal(rel.room(acked, p, { ...HINT, nextIndex: 5 }, T + 1), 1);
    assert.equal(rel.room(acked, p, { hour: HINT.hour + 1, nextIndex: 0 }, T + 3_600_000), 2, 'a new hour starts fresh slots');
    assert.equal(rel.room(rel.abandon(s), p, HINT, T), 4);
  });

  it('causal history excludes the frame itself; a restart makes everything due now', () => {
    const s = withInFlight(3);
    assert.deepEqual(rel.causalHistory(s, id(3)).map(toHex), [id(1), id(2)].map(toHex));
    assert.equal(rel.nextDueAt(rel.retryAllNow(s, T + 5)), T + 5);
    assert.deepEqual(rel.forget(s, id(2)).inFlight.map((f) => toHex(f.messageId)), [id(1), id(3)].map(toHex));
  });
});

describe('reliability: state', () => {
  it('round-trips through state.proto and rejects malformed or unknown-version records', () => {
    let s = withInFlight(3, rel.onHandshakeSent(rel.EMPTY_RELIABILITY, id(9), T, P));
    s = rel.onFrames(s, [content(id(20), 7, [id(21)])], T + 3, P, { known: NONE, acknowledge: true }).state;
    s = rel.onDuplicateEnvelope(s, id(20), T + 4, P);
    const bytes = rel.serializeReliability(s);
    assert.deepEqual(rel.deserializeReliability(bytes), s);
    assert.deepEqual(rel.deserializeReliability(rel.serializeReliability(rel.EMPTY_RELIABILITY)), rel.EMPTY_RELIABILITY);
    assert.throws(() => rel.deserializeReliability(new Uint8Array([0xff, 0xff])), (e: unknown) => e instanceof UmbraError && e.code === 'state-malformed');
    const v2 = rel.serializeReliability(s).slice();
    v2[1] = 2; // field 1 (version) = 2
    assert.throws(() => rel.deserializeReliability(v2), (e: unknown) => e instanceof UmbraError && e.code === 'state-unsupported-version');
    const badId = rel.serializeReliability({ ...s, recentIds: [new Uint8Array(3)] });
    assert.throws(() => rel.deserializeReliability(badId), { code: 'state-malformed' });
  });

  it('conversation records: a bare conversation state (written before) decodes as legacy; a record carries both', () => {
    const legacy = toBinary(PrivateConversationStateSchema, create(PrivateConversationStateSchema, { version: 1, conversationId: new Uint8Array(16).fill(1), initiator: true, createdAt: 5n }));
    const l = rel.decodeConversationRecord(legacy);
    assert.equal(l.reliability, null);
    assert.deepEqual(l.conversationState, legacy);
    const s = withInFlight(2);
    const record = rel.encodeConversationRecord(legacy, s);
    const r = rel.decodeConversationRecord(record);
    assert.deepEqual(r.conversationState, legacy);
    assert.deepEqual(r.reliability, s);
    void serializeConversation;
  });

  it('records split without decoding: idle only when nothing in the state can fall due; anything unusual is left to the decoder', () => {
    const legacy = toBinary(PrivateConversationStateSchema, create(PrivateConversationStateSchema, { version: 1, conversationId: new Uint8Array(16).fill(1), initiator: true, createdAt: 5n }));
    // Idle: a Lamport clock, recent ids, an old ack time and a refusal make nothing due.
    const quiet = rel.onFrames(rel.EMPTY_RELIABILITY, [content(id(20), 7)], T, P, { known: NONE, acknowledge: false }).state;
    const idle = { ...quiet, lastAckSentAt: T - 5, refusal: { reason: 'invitation-used' as const, refusedAt: T } };
    assert.equal(idle.pendingAcks.length, 0);
    const busyStates = {
      acks: rel.onFrames(rel.EMPTY_RELIABILITY, [content(id(20), 7)], T, P, { known: NONE, acknowledge: true }).state,
      missing: rel.onFrames(rel.EMPTY_RELIABILITY, [content(id(20), 7, [id(21)])], T, P, { known: NONE, acknowledge: false }).state,
      inFlight: withInFlight(1),
      handshake: rel.onHandshakeSent(rel.EMPTY_RELIABILITY, id(9), T, P),
    };
    for (const [name, state] of [['empty', rel.EMPTY_RELIABILITY], ['idle', idle], ...Object.entries(busyStates)] as const) {
      const record = rel.encodeConversationRecord(legacy, state);
      const parts = rel.splitConversationRecord(record);
      assert.ok(parts !== null, name);
      assert.deepEqual(parts.conversationState, legacy, name);
      assert.deepEqual(rel.deserializeReliability(parts.reliability), rel.decodeConversationRecord(record).reliability, name);
      assert.equal(parts.idle, name === 'empty' || name === 'idle', `${name}: idle`);
      assert.equal(rel.nextDueAt(state) === null && state.pendingAcks.length === 0 && state.inFlight.length === 0, parts.idle, `${name}: idle means nothing due`);
    }
    const record = rel.encodeConversationRecord(legacy, idle);
    assert.equal(rel.splitConversationRecord(legacy), null, 'a legacy state');
    assert.equal(rel.splitConversationRecord(record.subarray(0, record.length - 1)), null, 'truncated');
    assert.equal(rel.splitConversationRecord(new Uint8Array([0xff, 0xff])), null, 'not protobuf');
    const v2 = record.slice();
    assert.equal(v2[0], 0xa0); // field 20, varint
    v2[2] = 2;
    assert.equal(rel.splitConversationRecord(v2), null, 'an unknown record version');
    assert.throws(() => rel.decodeConversationRecord(v2), { code: 'state-unsupported-version' });
    const reordered = Uint8Array.from([...record.subarray(2), ...record.subarray(0, 2)]);
    assert.equal(rel.splitConversationRecord(reordered), null, 'fields out of order');
    const extra = Uint8Array.from([...record, 0xb8, 0x01, 0x01]); // field 23
    assert.equal(rel.splitConversationRecord(extra), null, 'an unknown field');
    // Damaged records never throw from the split; what it accepts, the full decoder reads the same way.
    const busy = rel.encodeConversationRecord(legacy, busyStates.inFlight);
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
    for (let i = 0; i < 3000; i++) {
      const damaged = (i % 2 === 0 ? record : busy).slice();
      for (let k = 0, n = 1 + (next() % 3); k < n; k++) damaged[next() % damaged.length] = next() & 0xff;
      const cut = i % 5 === 0 ? damaged.subarray(0, next() % damaged.length) : damaged;
      const parts = rel.splitConversationRecord(cut);
      if (parts === null) continue;
      let full: ReturnType<typeof rel.decodeConversationRecord> | null;
      try {
        full = rel.decodeConversationRecord(cut);
      } catch {
        full = null;
      }
      if (full === null || full.reliability === null) {
        // The damage is inside the reliability state (the record's headers are intact): the full
        // decoder refuses the record, and the state's own decoder refuses it when it is used.
        assert.throws(() => rel.deserializeReliability(parts.reliability), UmbraError);
        continue;
      }
      assert.deepEqual(parts.conversationState, full.conversationState);
      assert.deepEqual(rel.deserializeReliability(parts.reliability), full.reliability);
    }
  });

  it('migration from the legacy columns, table and outbox keeps every fact, bounded', () => {
    const m = rel.migrateReliability({
      lamport: 42,
      recentIds: [id(1), id(2), new Uint8Array(2)],
      missing: [{ messageId: id(30), noticedAt: T + 5, requests: 2, nextRequestAt: T + 900 }, { messageId: id(31), noticedAt: T + 1, requests: 0, nextRequestAt: T + 100 }],
      inFlight: [
        { messageId: id(4), lamport: 9, hintHour: HINT.hour, hintIndex: 3, attempts: 2, lastSentAt: T, nextAttemptAt: T + 4000 },
        { messageId: id(3), lamport: 8, hintHour: HINT.hour, hintIndex: 2, attempts: 1, lastSentAt: T, nextAttemptAt: T + 2000 },
      ],
      handshake: { messageId: id(8), attempts: 3, nextAttemptAt: T + 7000 },
    });
    assert.equal(m.lamport, 42);
    assert.deepEqual(m.recentIds.map(toHex), [id(1), id(2)].map(toHex));
    assert.deepEqual(m.missing.map((x) => toHex(x.messageId)), [id(31), id(30)].map(toHex));
    assert.deepEqual(m.inFlight.map((x) => x.lamport), [8, 9]);
    assert.equal(m.handshake?.attempts, 3);
    assert.equal(rel.nextDueAt(m), T + 100);
    assert.deepEqual(rel.deserializeReliability(rel.serializeReliability(m)), m);
  });
});
