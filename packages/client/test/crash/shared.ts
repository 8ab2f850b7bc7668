export { Client, MailboxDelivery, SqliteStore, SeededRandom } from '../../src/node.ts';
export { decodeContent } from '../../src/frames.ts';
export function fromHexKey(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
}
