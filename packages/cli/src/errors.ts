/**
 * Errors meant for the person at the terminal (or a script): one line of plain words, an
 * optional hint, a stable `code` (the --json error shape, docs/CLI.md) and the exit code.
 * Everything a command can throw is turned into one of these by `toCliError` in main.ts; a
 * stack trace is shown only with --debug.
 */

/** Exit codes: docs/CLI.md "Exit codes". */
export const EXIT = {
  /** The operation was refused or did not happen (a dead end the CLI can tell). */
  failed: 1,
  /** Bad arguments: nothing was done. */
  usage: 2,
  /** No identity, conversation, group or member by that name. */
  notFound: 3,
  /** A service, directory or the agent could not be reached. */
  unreachable: 4,
  /** Wrong passphrase, or the store is held by another process. */
  locked: 5,
} as const;

export type ErrorCode =
  | 'usage'
  | 'no-identity'
  | 'identity-exists'
  | 'not-found'
  | 'ambiguous'
  | 'wrong-passphrase'
  | 'store-locked'
  | 'unreachable'
  | 'invitation-invalid'
  | 'invitation-expired'
  | 'invitation-own'
  | 'invitation-already-used'
  | 'invitation-refused'
  | 'transport-mismatch'
  | 'blocked'
  | 'cannot-send'
  | 'message-too-large'
  | 'nobody-to-receive'
  | 'already-member'
  | 'not-allowed'
  | 'directory'
  | 'rate-limited'
  | 'agent'
  | 'internal';

const EXIT_OF: Record<ErrorCode, number> = {
  usage: EXIT.usage,
  'no-identity': EXIT.notFound,
  'identity-exists': EXIT.usage,
  'not-found': EXIT.notFound,
  ambiguous: EXIT.usage,
  'wrong-passphrase': EXIT.locked,
  'store-locked': EXIT.locked,
  unreachable: EXIT.unreachable,
  'invitation-invalid': EXIT.failed,
  'invitation-expired': EXIT.failed,
  'invitation-own': EXIT.failed,
  'invitation-already-used': EXIT.failed,
  'invitation-refused': EXIT.failed,
  'transport-mismatch': EXIT.failed,
  blocked: EXIT.failed,
  'cannot-send': EXIT.failed,
  'message-too-large': EXIT.usage,
  'nobody-to-receive': EXIT.failed,
  'already-member': EXIT.failed,
  'not-allowed': EXIT.failed,
  directory: EXIT.failed,
  'rate-limited': EXIT.unreachable,
  agent: EXIT.unreachable,
  internal: EXIT.failed,
};

export class CliError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | null;
  readonly exitCode: number;
  /** With only a message: a refused request ('usage'), as the operator commands (hub) use it. */
  constructor(message: string);
  constructor(code: ErrorCode, message: string, options?: { hint?: string; cause?: unknown });
  constructor(codeOrMessage: string, message?: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message ?? codeOrMessage, options.cause !== undefined ? { cause: options.cause } : undefined);
    const code: ErrorCode = message === undefined ? 'usage' : (codeOrMessage as ErrorCode);
    this.name = 'CliError';
    this.code = code;
    this.hint = options.hint ?? null;
    this.exitCode = EXIT_OF[code];
  }

  /** The --json error document (docs/CLI.md, "Error"). */
  toJson(): { error: { code: ErrorCode; message: string; hint: string | null } } {
    return { error: { code: this.code, message: this.message, hint: this.hint } };
  }

  /** Crosses the agent socket as plain data and back. */
  static fromJson(value: unknown): CliError {
    const e = (value as { error?: { code?: unknown; message?: unknown; hint?: unknown } } | null)?.error;
    const code = typeof e?.code === 'string' && e.code in EXIT_OF ? (e.code as ErrorCode) : 'internal';
    const message = typeof e?.message === 'string' ? e.message : 'the agent gave an unreadable answer';
    return new CliError(code, message, typeof e?.hint === 'string' ? { hint: e.hint } : {});
  }
}

export const usage = (message: string, hint?: string): CliError => new CliError('usage', message, hint !== undefined ? { hint } : {});
