/**
 * Test hygiene (issue 14): a test file whose hook times out while it holds child processes, or
 * that the runner stops, ends and leaves no process behind (fixtures/children.ts). Each case
 * runs fixtures/leaky-suite.ts under `node --test` as npm test would and checks that it ended
 * by itself and that its children and grandchildren are gone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { killChildren, killPids, liveChildren, runFile, spawnChild } from './fixtures/children.ts';

const SUITE = fileURLToPath(new URL('./fixtures/leaky-suite.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'umbra-children-'));
const leftovers: number[] = [];

after(async () => {
  await killChildren();
  killPids(leftovers); // only if a case failed: never leave them running
  rmSync(dir, { recursive: true, force: true });
});

/** Alive and not a zombie (a killed orphan waits for init to reap it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function allGone(pids: number[], withinMs: number): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = left.filter(alive);
  }
  return left;
}

async function runLeaky(mode: string, flags: string[]): Promise<{ timedOut: boolean; code: number | null; pids: number[] }> {
  const pidsFile = join(dir, `${mode}.pids`);
  // Without NODE_TEST_CONTEXT (set for us by our own runner): a top-level `node --test` run.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = await runFile(process.execPath, ['--import', 'tsx', '--test', ...flags, SUITE], {
    env: { ...env, UMBRA_LEAKY_MODE: mode, UMBRA_PIDS_FILE: pidsFile },
    timeoutMs: 120_000,
  });
  let pids: number[] = [];
  try {
    pids = readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number);
  } catch {
    // no child reported
  }
  leftovers.push(...pids);
  return { timedOut: r.timedOut, code: r.code, pids };
}

describe('child processes of a failing test file', { timeout: 300_000 }, () => {
  for (const [mode, flags] of [
    ['after-hook', []],
    ['exit-hook', ['--test-force-exit']],
    ['sigterm', ['--test-timeout=8000']],
  ] as const) {
    test(`${mode}: the file ends by itself, failed, and its 3 children and 3 grandchildren are gone`, async () => {
      const r = await runLeaky(mode, [...flags]);
      assert.equal(r.timedOut, false, 'the test file never ended (npm test would wait forever)');
      assert.notEqual(r.code, 0, 'the failing hook must fail the run');
      assert.equal(r.pids.length, 6, `pids reported: ${r.pids.join(' ')}`);
      assert.deepEqual(await allGone(r.pids, 5000), [], 'processes left behind');
    });
  }

  test('killChildren kills a tracked child with its whole process group, and waits for it', async () => {
    const child = spawnChild('sh', ['-c', 'sleep 600 & echo $!; wait'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const grandchild = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    assert.equal(liveChildren(), 1);
    await killChildren();
    assert.equal(liveChildren(), 0);
    assert.equal(child.signalCode, 'SIGKILL');
    assert.deepEqual(await allGone([grandchild], 5000), []);
  });
});
