/**
 * status-go compatibility data (reference/peers.md §1.10): T4 (membership event signing, from
 * protocol/v1/membership_update_message_test.go TestSignMembershipUpdate) and T6 (clock).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { group, nobleProvider, toHex, fromHex, utf8, concat } from '../src/index.ts';

const { EventType } = group;

const T4_KEY = '838fbdd1b670209a258b90af25653a018bc582c44c56e6290a973eebbeb15732';
const T4_SIGNER =
  '0x04745e0d27132e2e8915096b08739bf2dc1165642b81bdffb8a9d5e4a9849c6a2a433e343f7a6597568dd0d1e978311c15626a6cbfc11236502ad7f98493481928';
const T4_MEMBER =
  '0x04aebe2bb01a988abe7d978662f21de7760486119876c680e5a559e38e086a2df6dad41c4e4d9079c03db3bced6cb70fca76afc5650e50ea19b81572046a813534';
const E1_RAW = '08a59bf9a1a8d6231a0874686174686174612001';
const E1_DIGEST = '1cb73ea3643c0eef6e5248ad0acf53fcbe1988af87f37ab405592801906444e5';
const E1_SIG =
  '9bb3447ce8a3788f4b88e1e680851eab4f615ca6d5feab93b4e644b3ea3e86be644ed83edff815f422d31e952710353d4a0fecfa66844e8cd3864e2df35cfb7a01';
const E2_DIGEST = '448440392c31ef84472a4d57fe0b47e110516022776c2ab49efac7f1d81b52ae';
const E2_SIG =
  'a3fab0f9e1d853c57c4313ff758003962470acb122ce1b835789784b809767a71b91b453aba660434ebd1970884379532010b4ac1a2e4de9a1a3106c56cee5a501';
// E2 raw: field 1 (clock varint), field 2 (the 132-character member string, length 0x84 0x01), then 2003.
const E2_RAW = '08a69bf9a1a8d623' + '128401' + toHex(utf8(T4_MEMBER)) + '2003';

const key = group.groupKeyFromSecret(fromHex(T4_KEY)!);
const e1Fields = { type: EventType.CHAT_CREATED, name: 'thathata', clock: 156897373998501n };
const e2Fields = { type: EventType.MEMBERS_ADDED, members: [T4_MEMBER], clock: 156897373998502n };

test('T4: the key gives the listed signer', () => {
  assert.equal(key.id, T4_SIGNER);
});

test('T4 E1: raw bytes, digest and signature match', () => {
  const e1 = group.signEvent('chat-id', key, e1Fields);
  assert.equal(toHex(e1.raw), E1_RAW);
  assert.equal(toHex(group.eventDigest('chat-id', e1.raw)), E1_DIGEST);
  assert.equal(toHex(e1.signature), E1_SIG);
  assert.equal(e1.from, T4_SIGNER);
});

test('T4 E2: raw bytes, digest and signature match', () => {
  const e2 = group.signEvent('chat-id', key, e2Fields);
  assert.equal(T4_MEMBER.length, 132);
  assert.equal(toHex(e2.raw), E2_RAW);
  assert.equal(toHex(group.eventDigest('chat-id', e2.raw)), E2_DIGEST);
  assert.equal(toHex(e2.signature), E2_SIG);
});

test('T4: decoding the listed wire bytes recovers the signer and the fields', () => {
  const d1 = group.decodeEvent('chat-id', fromHex(E1_SIG + E1_RAW)!);
  assert.ok(d1.ok);
  assert.equal(d1.event.from, T4_SIGNER);
  assert.equal(d1.event.type, EventType.CHAT_CREATED);
  assert.equal(d1.event.name, 'thathata');
  assert.equal(d1.event.clock, 156897373998501n);
  const d2 = group.decodeEvent('chat-id', fromHex(E2_SIG + E2_RAW)!);
  assert.ok(d2.ok);
  assert.equal(d2.event.from, T4_SIGNER);
  assert.deepEqual([...d2.event.members], [T4_MEMBER]);
  assert.equal(toHex(d2.event.raw), E2_RAW);
});

test('T4: MembershipUpdateMessage round trip keeps every event byte (TestSignMembershipUpdate)', () => {
  const events = [group.signEvent('chat-id', key, e1Fields), group.signEvent('chat-id', key, e2Fields)];
  const bytes = group.encodeMembershipUpdate('chat-id', events);
  // chat_id (field 1), then each event as field 2: tag 0x12, length, signature ‖ raw.
  const e1Wire = fromHex(E1_SIG + E1_RAW)!;
  assert.equal(toHex(bytes.subarray(0, 9)), '0a07' + toHex(utf8('chat-id')));
  assert.equal(toHex(bytes.subarray(9, 11)), '12' + e1Wire.length.toString(16));
  assert.equal(toHex(bytes.subarray(11, 11 + e1Wire.length)), toHex(e1Wire));
  const decoded = group.decodeMembershipUpdate(bytes);
  assert.ok(decoded.ok);
  assert.equal(decoded.value.chatId, 'chat-id');
  assert.equal(decoded.value.events.length, 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(toHex(decoded.value.events[i]!.signature), toHex(events[i]!.signature));
    assert.equal(toHex(decoded.value.events[i]!.raw), toHex(events[i]!.raw));
    assert.equal(decoded.value.events[i]!.from, T4_SIGNER);
  }
  assert.equal(decoded.value.entity, null);
});

test('received event bytes are kept verbatim, even when not what we would encode', () => {
  // Same event with the fields out of order (type before name): protobuf accepts it, Go would
  // not produce it. The signature covers these exact bytes, so they must survive unchanged.
  const raw = fromHex('08a59bf9a1a8d62320011a087468617468617461')!;
  const sig = group.signDigest(key.secretKey, group.eventDigest('chat-id', raw));
  const decoded = group.decodeEvent('chat-id', concat(sig, raw));
  assert.ok(decoded.ok);
  assert.equal(toHex(decoded.event.raw), toHex(raw));
  assert.notEqual(toHex(group.encodeEventFields(decoded.event)), toHex(raw));
  assert.equal(toHex(group.eventWireBytes(decoded.event)), toHex(concat(sig, raw)));
});

test('T6: CalcMessageClock(0, 1) = 60001, and the Lamport rule', () => {
  assert.equal(group.nextClock(0n, 1), 60001n);
  assert.equal(group.nextClock(999n, 1000), 61000n);
  assert.equal(group.nextClock(1000n, 1000), 1001n);
  assert.equal(group.nextClock(5000n, 1000), 5001n);
});

test('receive clock check: reject 0 and more than 120 s ahead', () => {
  assert.equal(group.checkClock(0n, 1000), 'clock-zero');
  assert.equal(group.checkClock(1n, 1000), 'ok');
  assert.equal(group.checkClock(121_000n, 1000), 'ok');
  assert.equal(group.checkClock(121_001n, 1000), 'clock-too-far-ahead');
});

test('signatures are R ‖ S ‖ V with V ∈ {0,1} and low S; high-S twins and V ∉ {0,1} are refused', () => {
  const digest = group.eventDigest('chat-id', fromHex(E1_RAW)!);
  const sig = group.signDigest(key.secretKey, digest);
  assert.ok(sig[64] === 0 || sig[64] === 1);
  assert.equal(toHex(group.recoverSigner(sig, digest)!), T4_SIGNER.slice(2));
  // The malleated twin (n - s, flipped V) recovers the same key in libsecp256k1; we refuse it.
  const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
  const s = BigInt('0x' + toHex(sig.subarray(32, 64)));
  const twin = Uint8Array.from(sig);
  twin.set(fromHex((n - s).toString(16).padStart(64, '0'))!, 32);
  twin[64] = sig[64]! ^ 1;
  assert.equal(group.recoverSigner(twin, digest), null);
  for (const v of [2, 27, 28]) {
    const bad = Uint8Array.from(sig);
    bad[64] = v;
    assert.equal(group.recoverSigner(bad, digest), null);
  }
});

test('chat ids: uuid v4 + "-" + creator key, validated by suffix and ≠ creator', () => {
  const id = group.newChatId(nobleProvider, key.id);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-0x04[0-9a-f]{128}$/);
  assert.ok(group.isValidChatIdFor(id, key.id));
  assert.ok(!group.isValidChatIdFor(key.id, key.id));
  assert.ok(!group.isValidChatIdFor(id.slice(0, -1) + (id.endsWith('0') ? '1' : '0'), key.id));
  assert.ok(!group.isValidChatIdFor(id, ''));
});

test('group message id = keccak256(author key ‖ entity bytes), same for every recipient', () => {
  const entity = group.encodeGroupChatMessage({ chatId: 'chat-id', clock: 1n, timestamp: 2n, text: 'hi' });
  const id = group.groupMessageId(key.id, entity);
  assert.equal(id, '0x' + toHex(group.keccak256(concat(fromHex(key.id.slice(2))!, entity))));
  const update = group.encodeMembershipUpdate('chat-id', [], { case: 'message', value: entity });
  // Wire-identical to status-go's embedded ChatMessage: tag 0x1a, length, message bytes.
  assert.equal(toHex(update), '0a07' + toHex(utf8('chat-id')) + '1a' + entity.length.toString(16).padStart(2, '0') + toHex(entity));
  const decoded = group.decodeMembershipUpdate(update);
  assert.ok(decoded.ok && decoded.value.entity?.case === 'message');
  assert.equal(group.groupMessageId(key.id, decoded.value.entity.value), id);
  const msg = group.decodeGroupChatMessage(decoded.value.entity.value);
  assert.ok(msg.ok);
  assert.equal(msg.value.text, 'hi');
  assert.equal(msg.value.messageType, group.MESSAGE_TYPE_PRIVATE_GROUP);
});
