/**
 * group/v1 protocol costs for a 50-member group (a script, not a test):
 *
 *   node --import tsx bench/group.ts [--json]
 *
 * Signing and decoding (secp256k1 recovery) of membership events, folding a 50-member history,
 * the receive path of a full-history update, bindings and message ids. Pure protocol code with
 * the noble provider (group/v1 uses @noble/curves secp256k1 and @noble/hashes keccak on every
 * platform). The client's fan-out bench (send to 50 members pairwise) is separate.
 */
import { group, nobleProvider } from '../packages/protocol/src/index.ts';

const MEMBERS = 50;
const NOW = Date.UTC(2026, 0, 1);
const json = process.argv.includes('--json');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Operations per second of `op` (median of 5 runs of ~250 ms). */
function rate(op: () => unknown, runs = 5, runMs = 250): number {
  for (let i = 0; i < 5; i++) op();
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    let n = 0;
    const start = performance.now();
    let elapsed: number;
    do {
      op();
      n++;
      elapsed = performance.now() - start;
    } while (elapsed < runMs);
    rates.push((n * 1000) / elapsed);
  }
  return median(rates);
}

function must(r: group.BuildResult): Extract<group.BuildResult, { ok: true }> {
  if (!r.ok) throw new Error(r.reason);
  return r;
}

const keys = Array.from({ length: MEMBERS }, () => group.generateGroupKey(nobleProvider));
const creator = keys[0]!;

// History: CHAT_CREATED, then each member added by its own MEMBERS_ADDED (status-go's worst
// case for a group grown one at a time), then 50 renames: 1 + 49 + 50 = 100 events.
let built = must(group.createGroup(nobleProvider, { name: 'fifty', nowMs: NOW, key: creator }));
for (const k of keys.slice(1)) built = must(group.addMembers({ chatId: built.state.chatId, events: built.events, key: creator }, [k.id], NOW));
for (let i = 0; i < 50; i++) {
  const author = keys[i % MEMBERS]!;
  built = must(group.rename({ chatId: built.state.chatId, events: built.events, key: author }, `name ${i}`, NOW));
}
const chatId = built.state.chatId;
const history = built.events;
const receiveAt = NOW + 60_000;

const smallFields = { type: group.EventType.NAME_CHANGED, clock: built.state.clock + 1n, name: 'renamed' };
const addAllFields = { type: group.EventType.MEMBERS_ADDED, clock: built.state.clock + 1n, members: keys.slice(1).map((k) => k.id) };
const small = group.signEvent(chatId, creator, smallFields);
const smallWire = group.eventWireBytes(small);
const fullUpdate = group.encodeMembershipUpdate(chatId, history);
const identity = nobleProvider.ed25519Generate();
const binding = group.createGroupBinding(nobleProvider, chatId, keys[1]!, identity);
const entity = group.encodeGroupChatMessage({ chatId, clock: 1n, timestamp: 1n, text: 'x'.repeat(100) });

const results = {
  members: MEMBERS,
  historyEvents: history.length,
  fullUpdateBytes: fullUpdate.length,
  signSmallEventsPerSec: rate(() => group.signEvent(chatId, creator, smallFields)),
  signAdd49EventsPerSec: rate(() => group.signEvent(chatId, creator, addAllFields)),
  decodeEventsPerSec: rate(() => group.decodeEvent(chatId, smallWire)),
  foldHistoryPerSec: rate(() => group.foldGroup(chatId, history, receiveAt)),
  mergeOneIntoHistoryPerSec: rate(() => group.mergeGroupEvents(chatId, history, [small], receiveAt)),
  receiveFullUpdatePerSec: rate(() => {
    const d = group.decodeMembershipUpdate(fullUpdate);
    if (!d.ok) throw new Error(d.code);
    return group.mergeGroupEvents(chatId, history, d.value.events, receiveAt);
  }, 3),
  receiveFullUpdateKnownPerSec: rate(() => {
    const d = group.decodeMembershipUpdate(fullUpdate, history);
    if (!d.ok) throw new Error(d.code);
    return group.mergeGroupEvents(chatId, history, d.value.events, receiveAt);
  }),
  createGroup50PerSec: rate(() => group.createGroup(nobleProvider, { name: 'g', members: keys.slice(1).map((k) => k.id), nowMs: NOW }), 3),
  bindingCreatePerSec: rate(() => group.createGroupBinding(nobleProvider, chatId, keys[1]!, identity)),
  bindingVerifyPerSec: rate(() => group.verifyGroupBinding(nobleProvider, binding, chatId)),
  messageIdsPerSec: rate(() => group.groupMessageId(creator.id, entity)),
};

if (json) {
  console.log(JSON.stringify(results, null, 2));
} else {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(12);
  const ms = (perSec: number) => `${(1000 / perSec).toFixed(3)} ms`.padStart(12);
  console.log(`group/v1, ${MEMBERS} members, history of ${history.length} events (${fullUpdate.length} B as one update), noble, node ${process.version}`);
  console.log(`                                         per second     per op`);
  console.log(`  sign event (NAME_CHANGED)            ${fmt(results.signSmallEventsPerSec)} ${ms(results.signSmallEventsPerSec)}`);
  console.log(`  sign event (MEMBERS_ADDED, 49 keys)  ${fmt(results.signAdd49EventsPerSec)} ${ms(results.signAdd49EventsPerSec)}`);
  console.log(`  decode + recover signer              ${fmt(results.decodeEventsPerSec)} ${ms(results.decodeEventsPerSec)}`);
  console.log(`  fold ${history.length}-event history             ${fmt(results.foldHistoryPerSec)} ${ms(results.foldHistoryPerSec)}   = ${fmt(results.foldHistoryPerSec * history.length).trim()} events/s`);
  console.log(`  merge 1 event into the history       ${fmt(results.mergeOneIntoHistoryPerSec)} ${ms(results.mergeOneIntoHistoryPerSec)}`);
  console.log(`  receive full update (decode + merge) ${fmt(results.receiveFullUpdatePerSec)} ${ms(results.receiveFullUpdatePerSec)}   = ${fmt(results.receiveFullUpdatePerSec * history.length).trim()} events/s`);
  console.log(`  same, history already stored         ${fmt(results.receiveFullUpdateKnownPerSec)} ${ms(results.receiveFullUpdateKnownPerSec)}`);
  console.log(`  createGroup with 49 members          ${fmt(results.createGroup50PerSec)} ${ms(results.createGroup50PerSec)}`);
  console.log(`  GroupBinding create                  ${fmt(results.bindingCreatePerSec)} ${ms(results.bindingCreatePerSec)}`);
  console.log(`  GroupBinding verify                  ${fmt(results.bindingVerifyPerSec)} ${ms(results.bindingVerifyPerSec)}`);
  console.log(`  group message id (100-char text)     ${fmt(results.messageIdsPerSec)} ${ms(results.messageIdsPerSec)}`);
}
