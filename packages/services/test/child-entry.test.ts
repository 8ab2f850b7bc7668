/**
 * The services' child processes start from an esbuild bundle (child-entry.ts), not through tsx:
 * the hub's RSA processes run the bundle, a bundled RSA serves, and UMBRA_CHILD_TSX=1 still
 * gives the tsx command.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { childCommand } from '../src/child-entry.ts';
import { startHub, type Hub } from '../src/hub.ts';
import { readyUrl } from '../src/ready-line.ts';

const root = mkdtempSync(join(tmpdir(), 'umbra-child-entry-'));
const hubs: Hub[] = [];
after(async () => {
  for (const h of hubs) await h.close();
  rmSync(root, { recursive: true, force: true });
});

/** The roles a signed descriptor ({payload, sig}) names. */
function roles(d: { payload: string }): unknown {
  return JSON.parse(Buffer.from(d.payload, 'base64url').toString('utf8')).roles;
}

/** Command lines of this process' children. */
function childCommandLines(): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) out.push(readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' '));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

test('the hub starts (and restarts) its RSA processes from the bundle', { skip: !existsSync('/proc/self/stat') }, async () => {
  const hub = await startHub({ dataDir: join(root, 'hub'), rsaMode: 'child' });
  hubs.push(hub);
  const rsas = () => childCommandLines().filter((c) => c.includes('rsa-main'));
  assert.equal(rsas().length, 2);
  for (const c of rsas()) {
    assert.match(c, /umbra-services\/build-[^ ]*\/rsa-main\.js /, c);
    assert.doesNotMatch(c, /tsx/);
  }
  await hub.rsaHandles[0].restart();
  assert.equal(rsas().length, 2);
  for (const c of rsas()) assert.match(c, /umbra-services\/build-[^ ]*\/rsa-main\.js /, c);
  // The restarted process serves on the same port.
  const r = await fetch(`${hub.rsas[0]}/.well-known/communicator.json`);
  assert.equal(r.status, 200);
  assert.deepEqual(roles(await r.json()), ['rsa']);
});

test('a bundled instance-main serves, and refuses a bad config as the source does', async () => {
  const cmd = await childCommand('instance-main');
  assert.equal(cmd.bundled, true);
  const child = spawn(process.execPath, [...cmd.args, JSON.stringify({ role: 'issuer', db: join(root, 'instance-issuer.db'), host: '127.0.0.1', port: 0 })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await readyUrl(child, 'bundled issuer instance');
    const r = await fetch(`${url}/.well-known/communicator.json`);
    assert.equal(r.status, 200);
    assert.deepEqual(roles(await r.json()), ['issuer']);
  } finally {
    child.kill('SIGKILL');
  }
  const bad = spawn(process.execPath, [...cmd.args, 'not json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  bad.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  assert.equal(await new Promise((r) => bad.once('exit', r)), 2);
  assert.match(stderr, /must be a JSON InstanceConfig/);
});

test('a bundled rsa-main listens and announces READY', async () => {
  const cmd = await childCommand('rsa-main');
  assert.equal(cmd.bundled, true);
  const hub = await startHub({ dataDir: join(root, 'for-keys') });
  hubs.push(hub);
  const config = {
    db: join(root, 'solo-rsa.db'),
    host: '127.0.0.1',
    port: 0,
    issuerName: hub.services.issuer.issuerName,
    tokenKeys: [Buffer.from(hub.services.issuer.tokenKeys.rsa).toString('base64url')],
  };
  const child = spawn(process.execPath, [...cmd.args, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await readyUrl(child, 'bundled RSA');
    const r = await fetch(`${url}/.well-known/communicator.json`);
    assert.equal(r.status, 200);
  } finally {
    child.kill('SIGKILL');
  }
});

test('UMBRA_CHILD_TSX=1 starts children through tsx', async () => {
  process.env.UMBRA_CHILD_TSX = '1';
  try {
    const cmd = await childCommand('rsa-main');
    assert.equal(cmd.bundled, false);
    assert.deepEqual(cmd.args.slice(0, 2), ['--import', 'tsx']);
    assert.match(cmd.args[2]!, /src\/rsa-main\.ts$/);
  } finally {
    delete process.env.UMBRA_CHILD_TSX;
  }
});
