/**
 * Printing: a command's result (text or --json), errors (one line and a hint; JSON with a
 * stable code; the stack only with --debug), a QR code (only on a terminal) and a spinner for
 * work that takes longer than half a second (only on a terminal, on stderr).
 */
import { CliError } from './errors.ts';

export interface Printable {
  readonly json: Record<string, unknown>;
  readonly text: string;
  readonly qr?: string;
  readonly warnings?: string[];
}

/** Messages from below (a server's answer) may carry newlines; an error stays one line. */
const oneLine = (text: string): string => text.replace(/\s*\n\s*/g, ' ').trim();

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** A QR code drawn with half blocks, for a phone to scan from the screen. */
async function qrForTerminal(text: string): Promise<string> {
  const QRCode = (await import('qrcode')).default;
  return QRCode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'L' });
}

export async function printResult(json: boolean, r: Printable, options: { qr?: boolean } = {}): Promise<void> {
  if (json) {
    printJson(r.warnings !== undefined && r.warnings.length > 0 ? { ...r.json, warnings: r.warnings } : r.json);
    return;
  }
  for (const w of r.warnings ?? []) process.stderr.write(`umbra: ${w}\n`);
  // Only a terminal can show it (and a file or pipe gets just the text to copy).
  if (options.qr === true && r.qr !== undefined && process.stdout.isTTY === true) {
    const code = await qrForTerminal(r.qr);
    // Measured without the colour escapes the terminal renderer puts around every block.
    // eslint-disable-next-line no-control-regex
    const width = Math.max(...code.split('\n').map((l) => [...l.replace(/\x1b\[[0-9;]*m/g, '')].length));
    if (width <= (process.stdout.columns ?? 80)) process.stdout.write(code + '\n');
    else process.stdout.write(`(The QR code is ${width} columns wide; widen the terminal to ${width} columns to see it, or copy the text.)\n\n`);
  }
  if (r.text !== '') process.stdout.write(r.text + '\n');
}

/** One line: on stderr in text mode; in --json mode the error document on stdout, where a script reads the result. */
export function printError(json: boolean, debug: boolean, e: CliError, original: unknown): void {
  if (json) process.stdout.write(JSON.stringify(e.toJson()) + '\n');
  else process.stderr.write(`umbra: ${oneLine(e.message)}${e.hint !== null ? ` (${oneLine(e.hint)})` : ''}\n`);
  if (debug) {
    const stack = (original instanceof Error ? original : e).stack ?? '';
    process.stderr.write(stack + '\n');
    let cause = (original as { cause?: unknown } | null)?.cause;
    while (cause instanceof Error) {
      process.stderr.write(`caused by: ${cause.stack ?? cause.message}\n`);
      cause = (cause as { cause?: unknown }).cause;
    }
  }
}

/** Run `work`; if it takes more than 0.5 s and stderr is a terminal, show a spinner with `label` until it ends. */
export async function withSpinner<T>(label: string, enabled: boolean, work: () => Promise<T>): Promise<T> {
  if (!enabled || process.stderr.isTTY !== true) return work();
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let i = 0;
  let shown = false;
  let tick: ReturnType<typeof setInterval> | undefined;
  const start = setTimeout(() => {
    shown = true;
    tick = setInterval(() => process.stderr.write(`\r${frames[i++ % frames.length]} ${label}…`), 100);
    process.stderr.write(`\r${frames[0]} ${label}…`);
  }, 500);
  try {
    return await work();
  } finally {
    clearTimeout(start);
    if (tick !== undefined) clearInterval(tick);
    if (shown) process.stderr.write('\r\x1b[K');
  }
}
