/**
 * Test helper for RSA tests that need real inboxes: an issuer on a temp SQLite file, token
 * wallets, inboxes with one seed, and deliveries signed by an SSA key the RSAs trust.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { nodeProvider } from '@umbra/crypto-node';
import { addressKeysOf, currentAddressKey, IssuerClient, RsaClient, tokenInfoOf, TokenWallet, type InboxClient, type RsaMessage, type ServiceClientOptions } from '@umbra/client/http';
import { deriveAddress, rerandomizeAddress } from '@umbra/protocol/services';
import { b64u } from '../src/bytes.ts';
import { generateEd25519, keyidOf, signRequest } from '../src/httpsig.ts';
import { startIssuer, type IssuerService } from '../src/issuer.ts';

export const clientOptions: ServiceClientOptions = { crypto: nodeProvider, webSocket: WebSocket as unknown as ServiceClientOptions['webSocket'] };

/** The deliverer every test RSA trusts (pass `trustedSsa.publicKey` in trustedSsaKeys). */
export const trustedSsa = generateEd25519();

export async function waitFor(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface TestIssuer {
  issuer: IssuerService;
  account: IssuerClient;
  close(): Promise<void>;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-rsa-fixture-'));
  const issuer = await startIssuer({ db: join(dir, 'issuer.db'), issuerName: 'issuer.test', quota: { ssa: 100_000, rsa: 100_000 } });
  const account = await IssuerClient.register(issuer.url);
  return {
    issuer,
    account,
    async close() {
      await issuer.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestInbox {
  inbox: InboxClient;
  /** The seed's M: addresses for it are derived under the RSA's published key. */
  m: Uint8Array;
}

/** Creates an inbox at `rsaUrl` with one seed (6 tokens of the RSA's class). */
export async function createTestInbox(account: IssuerClient, rsaUrl: string): Promise<TestInbox> {
  const client = new RsaClient(rsaUrl, clientOptions);
  const wallet = new TokenWallet(account, tokenInfoOf(await client.descriptor()), 6);
  const inbox = await client.createInbox(await wallet.takeMany(5));
  const [seed] = await inbox.requestSeeds(await wallet.take(), 1);
  return { inbox, m: seed!.M };
}

/** Delivers `text` to the inbox through the RSA instance at `rsaUrl` (202 expected). */
export async function deliverText(rsaUrl: string, to: TestInbox, text: string): Promise<number> {
  const pub = currentAddressKey(addressKeysOf(await new RsaClient(rsaUrl, clientOptions).descriptor()), 'ephemeral');
  const r = rerandomizeAddress(deriveAddress(to.m, pub), pub);
  if (r.kind !== 'ok') throw new Error('address did not re-randomize');
  const body = new TextEncoder().encode(JSON.stringify({ addr: b64u(r.address), ttl_s: 3600, payload: b64u(new TextEncoder().encode(text)) }));
  const res = await fetch(`${rsaUrl}/v1/deliver`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signRequest(trustedSsa, keyidOf(trustedSsa.publicKey), 'POST', '/v1/deliver', body) },
    body: Buffer.from(body),
  });
  return res.status;
}

/** Opens pushed or fetched messages as text. */
export async function texts(inbox: InboxClient, msgs: RsaMessage[]): Promise<string[]> {
  return Promise.all(msgs.map(async (m) => new TextDecoder().decode((await inbox.open(m))!)));
}
