/** Builds the Delivery adapter the transport setting names. */
import { ClientError, MailboxDelivery, ServicesDelivery, type Delivery, type ServicesConfig, type Store } from '@umbra/client/node';
import { CliError, usage } from './errors.ts';
import type { TransportConfig } from './config.ts';

/**
 * The services behind `--hub`: either the hub's first URL (the issuer, as `umbra hub` prints it;
 * the SSA and the two RSAs are on the next three ports) or all four, comma-separated:
 * `issuer,ssa,rsa,rsa` (a hub on arbitrary ports, or services on several hosts).
 */
export function hubServices(hub: string): ServicesConfig {
  const parts = hub.split(',').map((p) => p.trim().replace(/\/+$/, '')).filter((p) => p !== '');
  for (const p of parts) {
    let u: URL;
    try {
      u = new URL(p);
    } catch {
      throw usage(`--hub: "${p}" is not a URL`, 'expected http://host:port, as "umbra hub" prints it');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usage(`--hub: "${p}" is not an http(s) URL`);
  }
  if (parts.length >= 3) return { issuer: parts[0]!, ssa: parts[1]!, rsas: parts.slice(2) };
  if (parts.length !== 1) throw usage('--hub takes the hub URL (http://127.0.0.1:7700) or issuer,ssa,rsa[,rsa…]');
  const u = new URL(parts[0]!);
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  const at = (i: number) => `${u.protocol}//${u.hostname.includes(':') ? `[${u.hostname}]` : u.hostname}:${port + i}`;
  return { issuer: at(0), ssa: at(1), rsas: [at(2), at(3)] };
}

/** The hub's directory: its first port + 4 (only for a single hub URL). */
export function hubDirectory(hub: string): string | null {
  if (hub.includes(',')) return null;
  const u = new URL(hubServices(hub).issuer);
  return `${u.protocol}//${u.hostname}:${Number(u.port) + 4}`;
}

export type OpenedDelivery = Delivery & { close?: () => unknown };

export async function openTransport(config: TransportConfig, store: Store): Promise<OpenedDelivery> {
  switch (config.kind) {
    case 'mailbox':
      return new MailboxDelivery(config.path, 50);
    case 'hub': {
      try {
        return await ServicesDelivery.open({ ...hubServices(config.url), store });
      } catch (e) {
        if (e instanceof ClientError && e.code === 'delivery-failed') {
          throw new CliError('unreachable', `cannot reach the hub at ${config.url} to set up this identity`, { hint: 'is the hub running? "umbra hub" starts one', cause: e });
        }
        if (e instanceof ClientError && e.code === 'invalid-argument') throw new CliError('transport-mismatch', e.message, { hint: 'use the --hub this identity was created with', cause: e });
        throw e;
      }
    }
    case 'waku': {
      if (config.bootstrap.length === 0) throw usage('--transport waku needs --bootstrap <multiaddr>', 'a node started with "umbra hub --waku" prints it');
      // Loaded on demand: libp2p takes seconds to import, and only Waku users need it.
      const { WakuDelivery } = await import('@umbra/client/waku');
      try {
        return await WakuDelivery.create({ bootstrap: config.bootstrap });
      } catch (e) {
        throw new CliError('unreachable', `could not start a Waku node: ${(e as Error).message}`, { cause: e });
      }
    }
  }
}
