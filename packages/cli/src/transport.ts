/** Builds the Delivery adapter the config names. */
import { ClientError, MailboxDelivery, ServicesDelivery, type Delivery, type ServicesConfig } from '@umbra/client/node';
import { CliError } from './errors.ts';
import type { TransportConfig } from './config.ts';

/** What a transport may need besides its config: where the identity lives and its passphrase. */
export interface TransportContext {
  readonly dataDir: string;
  readonly passphrase: string;
}

/**
 * The services behind `--hub`: either the hub's first URL (the issuer, as `umbra hub` prints it;
 * the SSA and the two RSAs are on the next three ports) or all four, comma-separated:
 * `issuer,ssa,rsa,rsa` (a hub on arbitrary ports, or services on several hosts).
 */
export function hubServices(hub: string): ServicesConfig {
  const parts = hub.split(',').map((p) => p.trim().replace(/\/+$/, '')).filter((p) => p !== '');
  const urls = parts.map((p) => {
    let u: URL;
    try {
      u = new URL(p);
    } catch {
      throw new CliError(`--hub: "${p}" is not a URL (expected http://host:port)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(`--hub: "${p}" is not an http(s) URL`);
    return u;
  });
  if (urls.length >= 3) return { issuer: parts[0]!, ssa: parts[1]!, rsas: parts.slice(2) };
  if (urls.length !== 1) throw new CliError('--hub takes the hub URL (http://127.0.0.1:7700) or issuer,ssa,rsa[,rsa…]');
  const u = urls[0]!;
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const at = (i: number) => `${u.protocol}//${u.hostname.includes(':') ? `[${u.hostname}]` : u.hostname}:${port + i}`;
  return { issuer: at(0), ssa: at(1), rsas: [at(2), at(3)] };
}

export async function openTransport(config: TransportConfig, context?: TransportContext): Promise<Delivery & { close?: () => unknown }> {
  switch (config.kind) {
    case 'mailbox':
      return new MailboxDelivery(config.path, 50);
    case 'hub': {
      if (context === undefined) throw new CliError('the hub transport needs the data directory');
      try {
        return await ServicesDelivery.open({ ...hubServices(config.url), dataDir: context.dataDir, passphrase: context.passphrase });
      } catch (e) {
        if (e instanceof ClientError && e.code === 'wrong-passphrase') throw new CliError('wrong passphrase for this store');
        if (e instanceof ClientError && e.code === 'delivery-failed') throw new CliError(`${e.message} (is the hub running? "umbra hub" starts one)`);
        throw e;
      }
    }
    case 'waku': {
      if (config.bootstrap.length === 0) throw new CliError('--transport waku needs --bootstrap <multiaddr> (a node started with "umbra hub --waku")');
      // Loaded on demand: libp2p takes seconds to import, and only Waku users need it.
      const { WakuDelivery } = await import('@umbra/client/waku');
      try {
        return await WakuDelivery.create({ bootstrap: config.bootstrap });
      } catch (e) {
        throw new CliError(`could not start a Waku node: ${(e as Error).message}`);
      }
    }
  }
}
