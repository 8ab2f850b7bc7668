/** The app's view of a stored 1:1 message (MessageInfo): its content decoded, ids in hex. */
import { toHex } from '@umbra/protocol';
import { MESSAGE_ID_BYTES, type MessageInfo } from './client-types.ts';
import { decodeContent } from './frames.ts';
import type { StoredMessage } from './store.ts';

export function messageInfo(m: StoredMessage): MessageInfo {
  const content = decodeContent(m.body);
  let kind: MessageInfo['kind'] = 'unknown';
  let text: string | null = null;
  let replyTo: string | null = null;
  switch (content?.kind.case) {
    case 'text':
      kind = 'text';
      text = content.kind.value.body;
      replyTo = content.kind.value.replyTo.length === MESSAGE_ID_BYTES ? toHex(content.kind.value.replyTo) : null;
      break;
    case 'reaction':
      kind = 'reaction';
      text = content.kind.value.emoji;
      break;
    case 'edit':
      kind = 'edit';
      text = content.kind.value.body;
      break;
    case 'delete':
      kind = 'delete';
      break;
  }
  return {
    conversationId: m.conversationId,
    id: toHex(m.messageId),
    outgoing: m.outgoing,
    kind,
    text,
    replyTo,
    lamport: m.lamport,
    sentAt: m.sentAt,
    receivedAt: m.receivedAt,
    status: m.status,
    read: m.read,
  };
}
