/**
 * The store passphrase: UMBRA_PASSPHRASE for scripts, otherwise asked on the terminal
 * (not echoed). The passphrase derives the data directory's master key with Argon2id (t = 3,
 * p = 4, 64 MiB; salt and parameters in umbra.db.kdf, docs/STORE.md); it is never written down.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { CliError } from './errors.ts';

export async function readPassphrase(options: { confirm: boolean }): Promise<string> {
  const fromEnv = process.env.UMBRA_PASSPHRASE;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!process.stdin.isTTY) {
    throw new CliError('usage', 'no passphrase', { hint: 'set UMBRA_PASSPHRASE, or run in a terminal to be asked for it' });
  }
  const first = await ask('Passphrase for your Umbra store: ');
  if (first.length === 0) throw new CliError('usage', 'the passphrase cannot be empty');
  if (options.confirm) {
    const again = await ask('Repeat the passphrase: ');
    if (again !== first) throw new CliError('usage', 'the two passphrases differ');
  }
  return first;
}

function ask(prompt: string): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk, _encoding, callback) {
      if (!muted) process.stderr.write(chunk);
      callback();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(prompt, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}
