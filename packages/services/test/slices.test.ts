import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { Slicer } from '../src/slices.ts';

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* busy, like a resolve + seal */
  }
}

test('within its budget a turn is granted at once; after it, callers wait', async () => {
  const s = new Slicer(50);
  assert.ok(s.turn() instanceof Promise, 'the first slice starts after an I/O poll');
  await s.turn();
  assert.equal(s.turn(), undefined);
  spin(60);
  const p = s.turn();
  assert.ok(p instanceof Promise);
  assert.equal(s.queued, 1);
  await p;
  assert.equal(s.queued, 0);
});

test('socket I/O is handled between sliced work items, not after all of them', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [conn] = (await once(server, 'connection')) as [net.Socket];
  await once(client, 'connect');
  const s = new Slicer(2);
  const order: string[] = [];
  conn.on('data', () => order.push('io'));
  const items = Array.from({ length: 40 }, async (_, k) => {
    await s.turn();
    spin(1);
    order.push(`item${k}`);
    if (k === 0) client.write('x'); // arrives while the other 39 items are queued
  });
  await Promise.all(items);
  const io = order.indexOf('io');
  client.destroy();
  conn.destroy();
  server.close();
  assert.ok(io >= 0 && io < 20, `the data event ran after ${io} of 40 items (${order.join(' ')})`);
});

test('callers are let through in order, one per event-loop turn once the budget is spent', async () => {
  const s = new Slicer(0);
  const got: number[] = [];
  await Promise.all(Array.from({ length: 10 }, (_, k) => Promise.resolve(s.turn()).then(() => got.push(k))));
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});
