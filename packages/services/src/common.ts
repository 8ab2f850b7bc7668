/** Shared server plumbing: Fastify set-up, problem+json errors, raw bodies, signed descriptors. */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import { descriptorSigningBytes } from '@umbra/protocol/services';
import { b64u, utf8 } from './bytes.ts';
import { registerCors } from './cors.ts';
import { ed25519Sign, ed25519Verify, type Ed25519Key } from './httpsig.ts';


declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** RFC 9457 problem details. */
export function problem(reply: FastifyReply, status: number, title: string, detail?: string): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title, status, ...(detail ? { detail } : {}) });
}

export class HttpProblem extends Error {
  constructor(readonly status: number, readonly title: string, readonly detail?: string, readonly headers?: Record<string, string>) {
    super(`${status} ${title}${detail ? `: ${detail}` : ''}`);
  }
}

export function createApp(bodyLimit: number): FastifyInstance {
  // No request logging: URLs and bodies may carry addresses and inbox ids.
  const app = Fastify({ logger: false, bodyLimit, forceCloseConnections: true });
  registerCors(app); // answers no origin until allowOrigins(app, …) (cors.ts)
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const raw = body as Buffer;
    req.rawBody = raw;
    try {
      done(null, raw.length === 0 ? {} : JSON.parse(raw.toString('utf8')));
    } catch {
      done(new HttpProblem(400, 'Malformed JSON', 'the request body is not valid JSON'), undefined);
    }
  });
  app.addContentTypeParser(['application/octet-stream', 'application/private-token-request'], { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    done(null, body);
  });
  app.setErrorHandler((err: unknown, _req, reply) => {
    if (err instanceof HttpProblem) return problem(err.headers ? reply.headers(err.headers) : reply, err.status, err.title, err.detail);
    const e = err as { code?: string; statusCode?: number; message?: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return problem(reply, 413, 'Body too large', 'the request body exceeds the size limit of this endpoint');
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return problem(reply, 415, 'Unsupported media type', e.message);
    if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return problem(reply, 400, 'Empty body', e.message);
    if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return problem(reply, e.statusCode, 'Bad request', e.message);
    // A store that cannot serve for now (a mailbox range being moved: ShardUnavailableError).
    if (e.statusCode === 503) return problem(reply.header('retry-after', '5'), 503, 'Service unavailable', 'try again shortly');
    console.error('[umbra services] internal error:', e.message ?? err);
    return problem(reply, 500, 'Internal error');
  });
  app.setNotFoundHandler((_req, reply) => problem(reply, 404, 'Not found'));
  return app;
}

export async function listen(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const addr = app.server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
}

export function rawBody(req: FastifyRequest): Uint8Array {
  return req.rawBody ? new Uint8Array(req.rawBody) : new Uint8Array(0);
}

/** Signed descriptor: {payload: b64u(JSON), sig: b64u(Ed25519(service_key, LP(label) ‖ payload))}. */
export function signDescriptor(key: Ed25519Key, body: Record<string, unknown>): { payload: string; sig: string } {
  const payload = utf8(JSON.stringify(body));
  return { payload: b64u(payload), sig: b64u(ed25519Sign(key, descriptorSigningBytes(payload))) };
}

export function verifyDescriptorSignature(serviceKey: Uint8Array, payload: Uint8Array, sig: Uint8Array): boolean {
  return ed25519Verify(serviceKey, descriptorSigningBytes(payload), sig);
}

export function bodyObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpProblem(400, 'Malformed body', 'expected a JSON object');
  return body as Record<string, unknown>;
}

export function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}
