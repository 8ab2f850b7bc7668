/**
 * WebSocket push survives a dropped PostgreSQL LISTEN connection (issue 18): two RSA instances on
 * one private PostgreSQL, a receiver connected to instance A, A's LISTEN backend terminated
 * (pg_terminate_backend) while the database refuses new connections, messages stored through
 * instance B meanwhile. A must re-LISTEN once it can, and re-sync its sockets, so the receiver is
 * pushed what was stored while A heard nothing, without waiting for a later message. Also: the
 * driver alone (refused re-LISTENs with backoff; a connection gone silent behind a relay, found by
 * the heartbeat) and the sharded store passing a shard's reconnect on as a re-sync.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import postgres from 'postgres';
import type { RsaMessage } from '@umbra/client/http';
import { PgDriver } from '../src/db.ts';
import { startRsa, type RsaService } from '../src/rsa.ts';
import { ShardAdmin, ShardedRsaStore } from '../src/shards.ts';
import { RSA_MESSAGE_CHANNEL } from '../src/store.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';
import { createTestInbox, deliverText, startTestIssuer, texts, trustedSsa, waitFor } from './rsa-fixture.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP relay to PostgreSQL whose open connections can be made silent: bytes are dropped both
 * ways and nothing is closed, as with a dead peer or a partition (no FIN, no RST). New
 * connections relay normally.
 */
async function silenceableRelay(target: URL): Promise<{ url(db: URL): string; silenceAll(): void; close(): Promise<void> }> {
  const pairs = new Set<{ a: Socket; b: Socket; silent: boolean }>();
  const server: Server = createServer((a) => {
    const b = connect(Number(target.port), target.hostname);
    const pair = { a, b, silent: false };
    pairs.add(pair);
    a.on('data', (d) => void (pair.silent || b.write(d)));
    b.on('data', (d) => void (pair.silent || a.write(d)));
    const end = () => {
      a.destroy();
      b.destroy();
      pairs.delete(pair);
    };
    a.on('error', end).on('close', end);
    b.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: (db) => `postgres://${db.username}@127.0.0.1:${port}${db.pathname}`,
    silenceAll: () => {
      for (const p of pairs) p.silent = true;
    },
    close: async () => {
      for (const p of pairs) {
        p.a.destroy();
        p.b.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}

describe('PostgreSQL LISTEN connection dropped', { timeout: 120_000 }, () => {
  let pg: PrivatePostgres;
  let admin: postgres.Sql;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await admin?.end({ timeout: 2 });
    await pg?.stop();
  });

  /** Runs `during` with `url`'s database refusing new connections (open ones keep working). */
  async function withConnectionsRefused(url: string, during: () => Promise<void>): Promise<void> {
    const name = new URL(url).pathname.slice(1);
    admin ??= postgres(url.replace(/\/[^/]+$/, '/postgres'), { max: 1, onnotice: () => {} });
    await admin.unsafe(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false`);
    try {
      await during();
    } finally {
      await admin.unsafe(`ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`);
    }
  }

  /** Terminates the backends LISTENing on `url`'s database; returns how many. */
  async function killListeners(via: PgDriver): Promise<number> {
    const rows = await via.all(
      "SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'listen%' AND pid <> pg_backend_pid()",
    );
    return rows.length;
  }

  it('the driver re-LISTENs with backoff and reports the reconnect', async () => {
    const url = await pg.createDb();
    const listener = new PgDriver(url, { listenBackoffMs: { min: 50, max: 400 } });
    const other = new PgDriver(url, { max: 1 });
    closers.push(() => listener.close(), () => other.close());
    const got: string[] = [];
    let reconnects = 0;
    await listener.listen('chan', (p) => got.push(p), () => reconnects++);
    await other.tx((q) => other.notify(q, 'chan', 'before'));
    await waitFor(() => got.includes('before'), 5000, 'the first notification');
    await withConnectionsRefused(url, async () => {
      assert.equal(await killListeners(other), 1);
      await sleep(600); // several refused re-LISTEN attempts
      await other.tx((q) => other.notify(q, 'chan', 'while-down'));
      assert.equal(reconnects, 0, 'no reconnect reported while the database refuses');
    });
    await waitFor(() => reconnects === 1, 10_000, 'the reconnect callback');
    await other.tx((q) => other.notify(q, 'chan', 'after'));
    await waitFor(() => got.includes('after'), 5000, 'a notification after the reconnect');
    assert.ok(!got.includes('while-down'), 'a NOTIFY while nobody listens is gone: the callback is what re-syncs');
  });

  it('a LISTEN connection that goes silent (no close) is found by the heartbeat and replaced', async () => {
    const url = await pg.createDb();
    const relay = await silenceableRelay(new URL(url));
    closers.push(() => relay.close());
    const listener = new PgDriver(relay.url(new URL(url)), { listenHeartbeatMs: 300, listenBackoffMs: { min: 50, max: 200 } });
    const other = new PgDriver(url, { max: 1 });
    closers.push(() => other.close(), () => listener.close());
    const got: string[] = [];
    let reconnects = 0;
    await listener.listen('chan', (p) => got.push(p), () => reconnects++);
    await other.tx((q) => other.notify(q, 'chan', 'before'));
    await waitFor(() => got.includes('before'), 5000, 'the first notification');
    relay.silenceAll();
    await other.tx((q) => other.notify(q, 'chan', 'unheard'));
    await waitFor(() => reconnects === 1, 10_000, 'the heartbeat to replace the silent connection');
    await other.tx((q) => other.notify(q, 'chan', 'after'));
    await waitFor(() => got.includes('after'), 5000, 'a notification on the new connection');
    assert.deepEqual(got, ['before', 'after']);
    assert.deepEqual(listener.listenStats, { losses: 1, reconnects: 1 });
  });

  it('the sharded store tells its subscribers to re-sync when one shard\'s LISTEN connection is lost', async () => {
    const control = await pg.createDb();
    const [a, b] = [await pg.createDb(), await pg.createDb()];
    const admin = new ShardAdmin(control, { drainMs: 0, subscribeGraceMs: 0 });
    closers.push(() => admin.close());
    await admin.init();
    await admin.addShard('a', a);
    await admin.addShard('b', b);
    await admin.bootstrap(['a', 'b']);
    const store = new ShardedRsaStore({ control });
    closers.push(() => store.close());
    await store.init();
    const heard: string[] = [];
    let resyncs = 0;
    await store.onMessage((h) => heard.push(h), () => resyncs++);
    const shardB = new PgDriver(b, { max: 1 });
    closers.push(() => shardB.close());
    assert.equal(await killListeners(shardB), 1);
    await waitFor(() => resyncs === 1, 10_000, 'the re-sync after shard b re-LISTENs');
    await shardB.tx((q) => shardB.notify(q, RSA_MESSAGE_CHANNEL, 'ab'));
    await waitFor(() => heard.includes('ab'), 5000, 'a notification from shard b after the reconnect');
  });

  it('an RSA instance whose LISTEN backend is killed pushes again, including what was stored meanwhile', async () => {
    const iss = await startTestIssuer();
    closers.push(() => iss.close());
    const db = await pg.createDb();
    const serviceKey = new Uint8Array(randomBytes(32));
    const rsas: RsaService[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await startRsa({ db, serviceKey, issuerName: 'issuer.test', tokenKeys: [iss.issuer.tokenKeys.rsa], originInfo: 'rsa.test', trustedSsaKeys: [trustedSsa.publicKey] });
      rsas.push(r);
      closers.push(() => r.close());
    }
    const [a, b] = rsas as [RsaService, RsaService];
    const to = await createTestInbox(iss.account, a.url);
    const pushed: RsaMessage[] = [];
    const conn = await to.inbox.connect((m) => pushed.push(m));
    closers.push(async () => conn.close());

    assert.equal(await deliverText(b.url, to, 'one'), 202);
    await waitFor(() => pushed.length === 1, 10_000, 'the first push across instances');
    const probe = new PgDriver(db, { max: 1 });
    closers.push(() => probe.close());
    await probe.all('SELECT 1'); // its connection is open before the database starts refusing
    await withConnectionsRefused(db, async () => {
      assert.ok((await killListeners(probe)) >= 1);
      await sleep(300);
      // B still has its pooled connections: it stores while A hears nothing.
      assert.equal(await deliverText(b.url, to, 'while-down'), 202);
      await sleep(300);
    });
    // No further delivery: A's re-sync alone must bring the message stored while it was deaf.
    await waitFor(() => pushed.length === 2, 15_000, 'the message stored while LISTEN was down to be pushed');
    assert.equal(await deliverText(b.url, to, 'after'), 202);
    await waitFor(() => pushed.length === 3, 10_000, 'a push after the reconnect');
    assert.deepEqual(await texts(to.inbox, pushed), ['one', 'while-down', 'after']);
    // A client catching up by fetch gets the same three, once each.
    assert.deepEqual(await texts(to.inbox, (await to.inbox.fetch()).messages), ['one', 'while-down', 'after']);
  });
});
