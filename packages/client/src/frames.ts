/**
 * Frame construction for the client. `sealFrame` encrypts a frame whose message id the client
 * chooses, on a copy of the conversation: it is Engine.send with two differences the client
 * needs — (1) a retransmission re-encrypted after its hint slot has gone stale keeps the
 * original message id, so the receiver deduplicates it; (2) nothing changes in the engine until
 * the caller has persisted the result and calls engine.commit(changes).
 * It uses only the protocol's public functions (encryptFrame, wire encoders); see the closing
 * note of issue 3 for the small protocol addition that would let it call Engine.send instead.
 */
import {
  encryptFrame,
  wire,
  type CryptoProvider,
  type Engine,
  type FrameBody,
  type PrivateConversation,
  type StateChanges,
} from '@umbra/protocol';
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
  crypto: CryptoProvider,
  engine: Engine,
  conversationId: string,
  frame: { messageId: Uint8Array; lamport: number; causalHistory: readonly Uint8Array[]; body: FrameBody },
  nowMs: number,
): SealedFrame {
  const current = engine.conversation(conversationId);
  if (current === undefined) throw new ClientError('unknown-conversation', `no conversation ${conversationId}`);
  const message = wire.create(wire.PrivateV1FrameSchema, {
    messageId: frame.messageId,
    lamport: BigInt(frame.lamport),
    causalHistory: [...frame.causalHistory],
    sentAt: BigInt(Math.max(0, Math.floor(nowMs))),
    body: frame.body,
  });
  const encrypted = encryptFrame(crypto, current, message, nowMs);
  const payload = wire.encodeEncryptedPayload({ case: 'doubleRatchet', value: wire.create(wire.DoubleRatchetMessageSchema, encrypted.message) });
  const envelope = wire.encodeEnvelope(encrypted.hint, salt(crypto), payload);
  const conversation = encrypted.conversation;
  return {
    envelope,
    conversation,
    changes: { conversations: [conversation], inboxes: [] },
    hintHour: conversation.sendHint.hour,
    hintIndex: conversation.sendHint.nextIndex - 1,
  };
}

/** 63 random bits with the top bit set (same as the engine: fixed-length varint). */
function salt(crypto: CryptoProvider): bigint {
  const b = crypto.randomBytes(8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, false) | (1n << 63n);
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
