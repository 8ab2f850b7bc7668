/**
 * Service child processes (rsa-main.ts, instance-main.ts) print `READY <url>` once they listen.
 * One reader of that line for the hub, the tests and the load test: it removes only its own
 * listeners, so whoever else watches the child's exit keeps watching.
 */
import type { ChildProcess } from 'node:child_process';

/** The URL the child announces; rejects if it exits first (`detail` adds, e.g., its captured stderr). */
export function readyUrl(child: ChildProcess, name: string, detail?: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const stop = () => {
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
    };
    const onData = (d: Buffer) => {
      seen += d.toString();
      const m = /READY (\S+)/.exec(seen);
      if (m) {
        stop();
        resolve(m[1]!);
      }
    };
    const onExit = (code: number | null) => {
      stop();
      reject(new Error(`${name} exited early (${code})${detail ? `: ${detail()}` : ''}`));
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });
}
