/**
 * chat_id = uuid v4 + "-" + "0x04…" of the creator's group key (status-go groupChatID).
 * Validation is status-go's validateChatID: the id ends with the creator's key and is not
 * just the key.
 */
import type { CryptoProvider } from '../crypto/provider.ts';
import { toHex } from '../bytes.ts';

/** RFC 9562 version 4 UUID, lowercase, from the provider's CSPRNG. */
export function uuidV4(crypto: CryptoProvider): string {
  const b = crypto.randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function newChatId(crypto: CryptoProvider, creatorId: string): string {
  return `${uuidV4(crypto)}-${creatorId}`;
}

/** validateChatID: HasSuffix(chatId, creator) && chatId != creator. */
export function isValidChatIdFor(chatId: string, creatorId: string): boolean {
  return creatorId.length > 0 && chatId.endsWith(creatorId) && chatId !== creatorId;
}
