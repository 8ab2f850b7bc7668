/**
 * Versioned, compact serialization of local state (state.proto): what a store persists.
 * Deserializers validate sizes and throw UmbraError('state-malformed') on anything else, so a
 * corrupted store is reported, never half-loaded.
 */
import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { KeyPair } from './crypto/provider.ts';
import { toHex } from './bytes.ts';
import { UmbraError } from './errors.ts';
import type { Inbox } from './invitation.ts';
import type { PrivateConversation } from './private-v1.ts';
import { NO_SKIPPED, type RatchetState, type SkippedMessageKey } from './ratchet.ts';
import { decode, encode } from './wire/codec.ts';
import { PresentationSchema } from './wire/gen/umbra/v1/invitation_pb.ts';
import {
  InboxStateSchema,
  KeyPairStateSchema,
  PrivateConversationStateSchema,
  RatchetStateV1Schema,
  type KeyPairState,
  type RatchetStateV1,
} from './wire/gen/umbra/v1/state_pb.ts';

export const STATE_VERSION = 1;

const EMPTY = new Uint8Array(0);
const orNull = (b: Uint8Array): Uint8Array | null => (b.length === 0 ? null : b);

function malformed(what: string): UmbraError {
  return new UmbraError('state-malformed', `stored state is malformed: ${what}`);
}

/**
 * What we wrote is canonical, so `decode` takes the plan codec, without protobuf-es's reflection
 * (at 100,000 conversations that was 1.6–3.3 s of opening a client, and much of its garbage).
 */
function decodeState<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array, what: string): MessageShape<Desc> {
  const message = decode(schema, bytes, Infinity);
  if (message === null) throw malformed(`${what} does not decode`);
  return message;
}

function keyPairToState(k: KeyPair): KeyPairState {
  return create(KeyPairStateSchema, { publicKey: k.publicKey, secretKey: k.secretKey });
}

function keyPairFromState(k: KeyPairState | undefined, what: string): KeyPair {
  if (k === undefined || k.publicKey.length === 0 || k.secretKey.length === 0) throw malformed(what);
  return { publicKey: k.publicKey, secretKey: k.secretKey };
}

function ratchetToState(r: RatchetState): RatchetStateV1 {
  return create(RatchetStateV1Schema, {
    rootKey: r.rootKey,
    sendingRatchetKey: keyPairToState(r.sendingRatchetKey),
    receivingRatchetKey: r.receivingRatchetKey ?? EMPTY,
    sendingChainKey: r.sendingChainKey ?? EMPTY,
    receivingChainKey: r.receivingChainKey ?? EMPTY,
    sendingHeaderKey: r.sendingHeaderKey ?? EMPTY,
    receivingHeaderKey: r.receivingHeaderKey ?? EMPTY,
    nextSendingHeaderKey: r.nextSendingHeaderKey,
    nextReceivingHeaderKey: r.nextReceivingHeaderKey,
    sendCount: r.sendCount,
    receiveCount: r.receiveCount,
    previousSendCount: r.previousSendCount,
    skipped: [...r.skipped.values()].map((s) => ({
      headerKey: s.headerKey,
      n: s.n,
      messageKey: s.messageKey,
      storedAt: BigInt(s.storedAt),
    })),
  });
}

function ratchetFromState(r: RatchetStateV1 | undefined): RatchetState {
  if (r === undefined || r.rootKey.length !== 32) throw malformed('ratchet');
  // Entries of one chain share one header-key array (ratchet.ts dedupes trials by identity).
  const headerKeys = new Map<string, Uint8Array>();
  const skipped = new Map<string, SkippedMessageKey>();
  for (const s of r.skipped) {
    if (s.headerKey.length !== 32 || s.messageKey.length !== 32) throw malformed('skipped key');
    const hkHex = toHex(s.headerKey);
    const headerKey = headerKeys.get(hkHex) ?? s.headerKey;
    headerKeys.set(hkHex, headerKey);
    skipped.set(`${hkHex}:${s.n}`, { headerKey, n: s.n, messageKey: s.messageKey, storedAt: Number(s.storedAt) });
  }
  return {
    rootKey: r.rootKey,
    sendingRatchetKey: keyPairFromState(r.sendingRatchetKey, 'ratchet key'),
    receivingRatchetKey: orNull(r.receivingRatchetKey),
    sendingChainKey: orNull(r.sendingChainKey),
    receivingChainKey: orNull(r.receivingChainKey),
    sendingHeaderKey: orNull(r.sendingHeaderKey),
    receivingHeaderKey: orNull(r.receivingHeaderKey),
    nextSendingHeaderKey: r.nextSendingHeaderKey,
    nextReceivingHeaderKey: r.nextReceivingHeaderKey,
    sendCount: r.sendCount,
    receiveCount: r.receiveCount,
    previousSendCount: r.previousSendCount,
    // Most records have none: they share the empty map fresh states use (~180 B each at 100,000).
    skipped: skipped.size === 0 ? NO_SKIPPED : skipped,
  };
}

export function serializeConversation(c: PrivateConversation): Uint8Array {
  return encode(
    PrivateConversationStateSchema,
    create(PrivateConversationStateSchema, {
      version: STATE_VERSION,
      conversationId: hexToBytes(c.id),
      initiator: c.initiator,
      identity: keyPairToState(c.identity),
      peerIdentity: c.peerIdentity,
      invitationId: c.invitationId,
      viaDefaultInbox: c.viaDefaultInbox,
      associatedData: c.associatedData,
      ratchet: ratchetToState(c.ratchet),
      sendHintKey: c.sendHintKey,
      receiveHintKey: c.receiveHintKey,
      sendHintHour: c.sendHint.hour,
      sendHintNextIndex: c.sendHint.nextIndex,
      receiveHints: c.receiveHints.hours.map((w) => ({ hour: w.hour, highest: w.highest, seenMask: w.seenMask })),
      peerEndpoints: [...c.peerEndpoints],
      ownEndpoints: [...c.ownEndpoints],
      peerPresentation: create(PresentationSchema, { name: c.peerPresentation.name, avatar: c.peerPresentation.avatar ?? EMPTY }),
      createdAt: BigInt(c.createdAt),
    }),
  );
}

export function deserializeConversation(bytes: Uint8Array): PrivateConversation {
  const s = decodeState(PrivateConversationStateSchema, bytes, 'conversation record');
  if (s.version !== STATE_VERSION) throw new UmbraError('state-unsupported-version', `conversation state version ${s.version}`);
  if (s.conversationId.length !== 16 || s.peerIdentity.length !== 32 || s.sendHintKey.length !== 32 || s.receiveHintKey.length !== 32) {
    throw malformed('conversation keys');
  }
  const avatar = s.peerPresentation?.avatar ?? EMPTY;
  return {
    type: 'private/v1',
    id: toHex(s.conversationId),
    initiator: s.initiator,
    identity: keyPairFromState(s.identity, 'identity'),
    peerIdentity: s.peerIdentity,
    invitationId: s.invitationId,
    viaDefaultInbox: s.viaDefaultInbox,
    associatedData: s.associatedData,
    ratchet: ratchetFromState(s.ratchet),
    sendHintKey: s.sendHintKey,
    receiveHintKey: s.receiveHintKey,
    sendHint: { hour: s.sendHintHour, nextIndex: s.sendHintNextIndex },
    receiveHints: { hours: s.receiveHints.map((w) => ({ hour: w.hour, highest: w.highest, seenMask: w.seenMask >>> 0 })) },
    peerEndpoints: s.peerEndpoints,
    ownEndpoints: s.ownEndpoints,
    peerPresentation: avatar.length > 0 ? { name: s.peerPresentation?.name ?? '', avatar } : { name: s.peerPresentation?.name ?? '' },
    createdAt: Number(s.createdAt),
  };
}

export function serializeInbox(i: Inbox): Uint8Array {
  return encode(
    InboxStateSchema,
    create(InboxStateSchema, {
      version: STATE_VERSION,
      invitationId: i.invitationId,
      identity: keyPairToState(i.identity),
      signedPrekeyId: i.signedPrekeyId,
      signedPrekey: keyPairToState(i.signedPrekey),
      oneTimePrekeyId: i.oneTimePrekeyId,
      ...(i.oneTimePrekey === null ? {} : { oneTimePrekey: keyPairToState(i.oneTimePrekey) }),
      oneTimePrekeyConsumed: i.oneTimePrekeyConsumed,
      kemPrekeyId: i.kemPrekeyId,
      kemPrekey: keyPairToState(i.kemPrekey),
      expiresAt: BigInt(i.expiresAt),
      defaultInbox: i.isDefaultInbox,
      signedInvitation: i.signedInvitation,
    }),
  );
}

export function deserializeInbox(bytes: Uint8Array): Inbox {
  const s = decodeState(InboxStateSchema, bytes, 'inbox record');
  if (s.version !== STATE_VERSION) throw new UmbraError('state-unsupported-version', `inbox state version ${s.version}`);
  if (s.invitationId.length !== 16) throw malformed('invitation id');
  return {
    invitationId: s.invitationId,
    identity: keyPairFromState(s.identity, 'inbox identity'),
    signedPrekeyId: s.signedPrekeyId,
    signedPrekey: keyPairFromState(s.signedPrekey, 'signed prekey'),
    oneTimePrekeyId: s.oneTimePrekeyId,
    oneTimePrekey: s.oneTimePrekey === undefined ? null : keyPairFromState(s.oneTimePrekey, 'one-time prekey'),
    oneTimePrekeyConsumed: s.oneTimePrekeyConsumed,
    kemPrekeyId: s.kemPrekeyId,
    kemPrekey: keyPairFromState(s.kemPrekey, 'ML-KEM prekey'),
    expiresAt: Number(s.expiresAt),
    isDefaultInbox: s.defaultInbox,
    signedInvitation: s.signedInvitation,
  };
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
