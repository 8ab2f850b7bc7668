/**
 * Crash-safety harness: two clients (Alice, Bob), each in a child process with an on-disk store,
 * talk through a shared SQLite mailbox while the harness kills one of them with SIGKILL at random
 * moments (during startup, sending, receiving, writing) and restarts it. Afterwards both must
 * converge: every message either side's store says it sent is in the other's store exactly once,
 * numbering has no gaps or repeats (nothing lost or sent twice), every message is acknowledged,
 * and both keep talking (a final exchange after the last kill), with no undecryptable envelope
 * (no ratchet desync).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { forkChild } from '../fixtures/children.ts';
import { SeededRandom, SqliteStore, decodeContent, fromHexKey } from './shared.ts';

const PEER = fileURLToPath(new URL('./peer.ts', import.meta.url));
const KEY_HEX = 'c7'.repeat(32);

interface Status {
  sent: number;
  received: number;
  pending: number;
  badlyFormed: Record<string, number>;
  conversations: number;
}

export interface CrashResult {
  kills: number;
  killsBeforeReady: number;
  aliceSent: number;
  bobSent: number;
  lost: number;
  duplicated: number;
  unacked: number;
  undecryptable: number;
  gaps: number;
  ms: number;
}

class Peer {
  child: ChildProcess | null = null;
  ready = false;
  private waiters: ((s: Status) => void)[] = [];
  constructor(
    readonly role: 'alice' | 'bob',
    readonly dir: string,
  ) {}

  start(): void {
    this.ready = false;
    const child = forkChild(PEER, [this.role, this.dir, KEY_HEX], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.on('message', (m: { type: string } & Status) => {
      if (m.type === 'ready') this.ready = true;
      if (m.type === 'status') for (const w of this.waiters.splice(0)) w(m);
    });
    this.child = child;
  }

  async kill(): Promise<void> {
    const child = this.child!;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    const start = Date.now();
    while (!this.ready) {
      if (this.child!.exitCode !== null) throw new Error(`${this.role} exited with ${this.child!.exitCode}`);
      if (Date.now() - start > timeoutMs) throw new Error(`${this.role} did not start`);
      await sleep(5);
    }
  }

  status(): Promise<Status> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.child!.send({ cmd: 'status' });
    });
  }

  send(msg: object): void {
    this.child!.send(msg);
  }

  async exit(): Promise<void> {
    const child = this.child!;
    const exited = new Promise((r) => child.once('exit', r));
    child.send({ cmd: 'exit' });
    await exited;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function undecryptable(s: Status): number {
  return Object.entries(s.badlyFormed)
    .filter(([reason]) => reason !== 'replay' && reason !== 'handshake-replayed')
    .reduce((n, [, v]) => n + v, 0);
}

async function converge(alice: Peer, bob: Peer, timeoutMs: number): Promise<[Status, Status]> {
  const start = Date.now();
  let stable = 0;
  for (;;) {
    const [a, b] = await Promise.all([alice.status(), bob.status()]);
    const done = a.conversations > 0 && b.conversations > 0 && a.pending === 0 && b.pending === 0 && a.received === b.sent && b.received === a.sent;
    stable = done ? stable + 1 : 0;
    if (stable >= 3) return [a, b];
    if (Date.now() - start > timeoutMs) throw new Error(`no convergence: alice ${JSON.stringify(a)} bob ${JSON.stringify(b)}`);
    await sleep(50);
  }
}

async function readTexts(dir: string, role: string): Promise<{ out: string[]; in: string[]; unacked: number }> {
  const store = await SqliteStore.open({ path: join(dir, `${role}.db`), key: fromHexKey(KEY_HEX) });
  try {
    const out: string[] = [];
    const inc: string[] = [];
    let unacked = 0;
    for (const c of await store.conversations.all()) {
      for (const m of await store.messages.history(c.meta.id, 1_000_000, null)) {
        const content = decodeContent(m.body);
        const text = content?.kind.case === 'text' ? content.kind.value.body : '?';
        if (m.outgoing) {
          out.push(text);
          if (m.status !== 'acked') unacked++;
        } else inc.push(text);
      }
    }
    return { out, in: inc, unacked };
  } finally {
    await store.close();
  }
}

export async function runCrashTest(options: { kills: number; seed?: number; log?: (line: string) => void }): Promise<CrashResult> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'umbra-crash-'));
  const rng = new SeededRandom(options.seed ?? 1);
  const alice = new Peer('alice', dir);
  const bob = new Peer('bob', dir);
  let killsBeforeReady = 0;
  try {
    bob.start();
    alice.start();
    await Promise.all([alice.waitReady(), bob.waitReady()]);
    for (let k = 1; k <= options.kills; k++) {
      const victim = rng.chance(0.5) ? alice : bob;
      // Mostly kill a running client; sometimes one that is still starting (opening, syncing).
      if (rng.chance(0.8)) await victim.waitReady();
      await sleep(rng.int(20, 250));
      if (!victim.ready) killsBeforeReady++;
      await victim.kill();
      victim.start();
      if (k < options.kills && rng.chance(0.15)) {
        // Kill it again while it starts up (opening the store, fetching, resuming the outbox).
        k++;
        await sleep(rng.int(50, 900));
        if (!victim.ready) killsBeforeReady++;
        await victim.kill();
        victim.start();
      }
      if (options.log !== undefined && k % 20 === 0) options.log(`${k} kills`);
    }
    await Promise.all([alice.waitReady(), bob.waitReady()]);
    alice.send({ cmd: 'quiesce' });
    bob.send({ cmd: 'quiesce' });
    await converge(alice, bob, 90_000);
    // Both sides keep talking after the last kill.
    alice.send({ cmd: 'send', count: 5 });
    bob.send({ cmd: 'send', count: 5 });
    const [a, b] = await converge(alice, bob, 60_000);
    await Promise.all([alice.exit(), bob.exit()]);

    const at = await readTexts(dir, 'alice');
    const bt = await readTexts(dir, 'bob');
    const dupes = (xs: string[]) => xs.length - new Set(xs).size;
    const missingFrom = (sent: string[], got: string[]) => {
      const g = new Set(got);
      return sent.filter((x) => !g.has(x)).length;
    };
    const gaps = (xs: string[], role: string) => {
      const want = new Set(Array.from({ length: xs.length }, (_, i) => `${role}-${i + 1}`));
      return xs.filter((x) => !want.has(x)).length;
    };
    return {
      kills: options.kills,
      killsBeforeReady,
      aliceSent: at.out.length,
      bobSent: bt.out.length,
      lost: missingFrom(at.out, bt.in) + missingFrom(bt.out, at.in),
      duplicated: dupes(at.out) + dupes(bt.out) + dupes(at.in) + dupes(bt.in),
      unacked: at.unacked + bt.unacked,
      undecryptable: undecryptable(a) + undecryptable(b),
      gaps: gaps(at.out, 'alice') + gaps(bt.out, 'bob'),
      ms: Date.now() - started,
    };
  } finally {
    for (const p of [alice, bob]) if (p.child !== null && p.child.exitCode === null) p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
