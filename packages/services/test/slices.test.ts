import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { Slicer } from '../src/slices.ts';

/**
 * The slicer's clock, advanced only by the work the test says it did: a descheduled process
 * (a loaded CI machine) cannot stretch a 1 ms item into a spent budget.
 */
class WorkClock {
  ms = 0;
  readonly now = (): number => this.ms;
  /** Work that takes `ms`, like a resolve + seal. */
  spin(ms: number): void {
    this.ms += ms;
  }
}

test('within its budget a turn is granted at once; after it, callers wait', async () => {
  const clock = new WorkClock();
  const s = new Slicer(50, clock.now);
  assert.ok(s.turn() instanceof Promise, 'the first slice starts after an I/O poll');
  await s.turn();
  assert.equal(s.turn(), undefined);
  clock.spin(60);
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
  const clock = new WorkClock();
  const s = new Slicer(2, clock.now);
  const order: string[] = [];
  conn.on('data', () => order.push('io'));
  const items = Array.from({ length: 40 }, async (_, k) => {
    await s.turn();
    clock.spin(1);
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

test('a slice lets queued callers through one after another until its budget is spent, in one event-loop turn', async () => {
  const clock = new WorkClock();
  const s = new Slicer(30, clock.now);
  clock.spin(35); // the current slice is spent: everyone queues
  let turns = 0;
  let counting = true;
  const count = () => {
    if (!counting) return;
    turns++;
    setImmediate(count);
  };
  setImmediate(count);
  const ranInTurn: number[] = [];
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      await s.turn();
      // Work in two microtask hops, as an item's resolve then its store call.
      clock.spin(1);
      await Promise.resolve();
      clock.spin(1);
      ranInTurn.push(turns);
    }),
  );
  counting = false;
  // 10 × 2 ms fits one 30 ms slice: all ran in the same turn (one commit group, not ten).
  assert.equal(new Set(ranInTurn).size, 1, `turns: ${ranInTurn.join(' ')}`);

  // With a 3 ms budget the same work spans several slices, an I/O poll between each.
  const small = new Slicer(3, clock.now);
  clock.spin(5);
  turns = 0;
  counting = true;
  setImmediate(count);
  const ranInSmall: number[] = [];
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      await small.turn();
      clock.spin(1);
      await Promise.resolve();
      clock.spin(1);
      ranInSmall.push(turns);
    }),
  );
  counting = false;
  const slices = new Set(ranInSmall).size;
  assert.ok(slices >= 4 && slices <= 10, `${slices} slices: ${ranInSmall.join(' ')}`);
  assert.ok(ranInSmall.some((t, k) => k > 0 && t === ranInSmall[k - 1]), 'some slices held more than one caller');
});

test('a budget given as a function is read at every check (the RSA shortens its slices while handshakes are under way)', async () => {
  const clock = new WorkClock();
  let budget = 20;
  const s = new Slicer(() => budget, clock.now);
  await s.turn();
  clock.spin(5);
  assert.equal(s.turn(), undefined, '5 ms into a 20 ms slice');
  budget = 2;
  assert.ok(s.turn() instanceof Promise, 'past a budget shortened to 2 ms');
});
