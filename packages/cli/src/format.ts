/** Human-readable and --json output. */
import QRCode from 'qrcode';
import type { ConversationInfo, MessageInfo } from '@umbra/client/node';

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function conversationLine(c: ConversationInfo, n: number): string {
  const unread = c.unreadCount > 0 ? `  ${c.unreadCount} unread` : '';
  const pending = c.pendingCount > 0 ? `  ${c.pendingCount} unacknowledged` : '';
  const consent = c.consent === 'allowed' ? '' : c.consent === 'unknown' ? '  [request]' : '  [blocked]';
  return `${String(n).padStart(3)}. ${c.peerName || '(no name)'}  ${c.id.slice(0, 8)}${consent}${unread}${pending}`;
}

const STATUS: Record<string, string> = { queued: '…', sent: '✓', acked: '✓✓', received: '', failed: '✗ not delivered' };

export function messageLine(m: MessageInfo, peerName: string): string {
  const when = new Date(m.sentAt).toISOString().slice(11, 16);
  const who = m.outgoing ? 'me' : peerName || 'them';
  const status = m.outgoing ? ` ${STATUS[m.status] ?? m.status}` : '';
  const reply = m.replyTo !== null ? ` (reply to ${m.replyTo.slice(0, 8)})` : '';
  const text = m.text ?? `[${m.kind}]`;
  return `[${when}] ${who}: ${text}${reply}${status}`;
}

/** A QR code drawn with half blocks, for a phone to scan from the screen. */
export async function qrForTerminal(text: string): Promise<string> {
  return QRCode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'L' });
}

export function parseDuration(text: string): number {
  const m = /^(\d+)\s*([smhdw]?)$/.exec(text.trim());
  if (m === null) throw new Error(`"${text}" is not a duration (examples: 30m, 12h, 7d)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}
