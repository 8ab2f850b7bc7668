/** The `umbra` command as the CLI tests run it: a fresh process with the passphrase in its environment. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runFile } from '../../client/test/fixtures/children.ts';

export const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/umbra.js');

export interface UmbraRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Never rejects: a process that could not start at all is exit code 1, the reason in stderr. */
export async function runUmbra(args: string[], passphrase: string): Promise<UmbraRun> {
  try {
    const r = await runFile(process.execPath, [BIN, ...args], { env: { ...process.env, UMBRA_PASSPHRASE: passphrase }, timeoutMs: 60_000 });
    return { code: r.code ?? 1, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    return { code: 1, stdout: '', stderr: String(e) };
  }
}
