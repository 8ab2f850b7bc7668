/** `umbra hub`: the Communicator services on loopback, until Ctrl-C. */
import { ensurePrivateDir, preparePrivateDatabase, PrivateDirError, startHub, type Hub } from '@umbra/services';
import { join } from 'node:path';
import { CliError } from './errors.ts';

/** A data directory the hub refuses (another user's, not a directory) is a user error, not a crash. */
function privateDirFailure(e: unknown): never {
  if (e instanceof PrivateDirError) throw new CliError(e.message);
  throw e;
}

export async function hub(opts: { data: string; port: string; waku?: boolean; wakuListen?: string }): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65532) throw new CliError('--port must be 0..65532');
  if (opts.waku === true) {
    await wakuHub(opts.data, opts.wakuListen ?? '/ip4/127.0.0.1/tcp/60000');
    return;
  }
  const h: Hub = await startHub({ dataDir: opts.data, port }).catch(privateDirFailure);
  console.log(`umbra hub — data in ${h.dataDir}`);
  console.log(`  issuer            ${h.issuer}`);
  console.log(`  sending service   ${h.ssa}`);
  h.rsas.forEach((url) => console.log(`  receiving service ${url}`));
  console.log(`  directory         ${h.directory}`);
  console.log(`\nClients: umbra --hub ${h.issuer} init --name <name>   (Ctrl-C stops the hub)`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await h.close();
}

/** `umbra hub --waku`: a Waku relay node with a store, for others to bootstrap from. */
async function wakuHub(dataDir: string, listen: string): Promise<void> {
  const { startWakuBootstrapNode } = await import('@umbra/client/waku');
  // Same rule as the services' data: a 0700 directory, a 0600 store (and so 0600 -wal/-shm).
  try {
    ensurePrivateDir(dataDir);
  } catch (e) {
    privateDirFailure(e);
  }
  const storePath = join(dataDir, 'waku-store.db');
  preparePrivateDatabase(storePath);
  const node = await startWakuBootstrapNode({ listen: [listen], store: { path: storePath } });
  console.log(`umbra Waku node (relay + store, data in ${dataDir})`);
  for (const addr of node.multiaddrs) console.log(`  ${addr}`);
  console.log(`\nClients: umbra --transport waku --bootstrap ${node.multiaddrs[0] ?? '<multiaddr>'} chat   (Ctrl-C stops the node)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await node.close();
}
