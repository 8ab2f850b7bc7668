/**
 * Test helper for the SSA's delivery-order tests (ssa-backlog, ssa-coalesce, ssa-fair): a
 * stand-in RSA on loopback that hands each request's payloads to the test and answers 202 once
 * the test lets it, and a submit of one message to a fresh address of one address key.
 */
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { SsaClient } from '@umbra/client/http';
import { deriveAddress, fromB64u, generateSeed, rerandomizeAddress } from '../src/index.ts';

export interface StandInRsa {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Both delivery routes (POST /v1/deliver/batch and /v1/deliver): `onItems` gets the payloads of
 * one request, in order; the answer (202 for each) goes once what it returns has settled, so a
 * test can hold an RSA's answers behind a promise.
 */
export async function standInRsa(onItems: (payloads: Uint8Array[]) => Promise<void> | void): Promise<StandInRsa> {
  const app = Fastify({ logger: false });
  app.post('/v1/deliver/batch', async (req) => {
    const items = (req.body as { items: { payload: string }[] }).items;
    await onItems(items.map((it) => fromB64u(it.payload)!));
    return { results: items.map(() => 202), retry_after_s: items.map(() => 0) };
  });
  app.post('/v1/deliver', async (req, reply) => {
    await onItems([fromB64u((req.body as { payload: string }).payload)!]);
    return reply.code(202).send({});
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`, close: () => app.close() };
}

/** Submit `text` through `client` to `rsa`, at a fresh rerandomized address of `key` (kid 7); returns the SSA's answer. */
export async function submitText(client: SsaClient, rsa: string, key: { readonly X: Uint8Array }, text: string, token: Parameters<SsaClient['submit']>[1]) {
  const rr = rerandomizeAddress(deriveAddress(generateSeed(), { kid: 7, X: key.X }), { kid: 7, X: key.X });
  assert.equal(rr.kind, 'ok');
  return client.submit({ rsa, addr: (rr as { address: Uint8Array }).address, payload: new TextEncoder().encode(text) }, token);
}
