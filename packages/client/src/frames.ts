/**
 * Frame helpers for the client. `sealFrame` encrypts a frame whose message id the client
 * chooses (a retransmission re-encrypted after its hint slot has gone stale keeps its original
 * id, so the receiver deduplicates it), on a copy: nothing changes in the engine until the
 * caller has persisted the result and calls engine.commit(changes).
 */
import { wire, type Engine, type FrameBody, type PrivateConversation, type StateChanges } from '@umbra/protocol';
import { fromBinary } from '@bufbuild/protobuf';
import { ClientError } from './errors.ts';

export interface SealedFrame {
  readonly envelope: Uint8Array;
  readonly conversation: PrivateConversation;
  readonly changes: StateChanges;
  /** The hint slot this envelope uses (for deciding whether a re-send of the same bytes can still be recognised). */
  readonly hintHour: number;
  readonly hintIndex: number;
}

export function sealFrame(
  engine: Engine,
  conversationId: string,
  frame: { messageId: Uint8Array; lamport: number; causalHistory: readonly Uint8Array[]; body: FrameBody },
  nowMs: number,
): SealedFrame {
  if (engine.conversation(conversationId) === undefined) throw new ClientError('unknown-conversation', `no conversation ${conversationId}`);
  const sealed = engine.seal(conversationId, frame.body, nowMs, {
    messageId: frame.messageId,
    lamport: BigInt(frame.lamport),
    causalHistory: frame.causalHistory,
  });
  return {
    envelope: sealed.outgoing.envelope,
    conversation: sealed.changes.conversations[0]!,
    changes: sealed.changes,
    hintHour: sealed.hintSlot.hour,
    hintIndex: sealed.hintSlot.index,
  };
}

export function textContent(text: string, replyTo?: Uint8Array): wire.Content {
  return wire.create(wire.ContentSchema, {
    kind: { case: 'text', value: wire.create(wire.TextSchema, { body: text, replyTo: replyTo ?? new Uint8Array(0) }) },
  });
}

export function encodeContent(content: wire.Content): Uint8Array {
  return wire.toBinary(wire.ContentSchema, content);
}

export function decodeContent(bytes: Uint8Array): wire.Content | null {
  try {
    return fromBinary(wire.ContentSchema, bytes);
  } catch {
    return null;
  }
}
