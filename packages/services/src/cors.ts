/**
 * CORS for the services, so that a web app on an origin the operator allows (the hub's own web
 * origin by default, `umbra hub --web-origin` for more) can call them with fetch. No cookies or
 * HTTP auth are involved (requests carry tokens and signatures in headers), so credentials are
 * never allowed; any other origin gets no CORS headers and the browser blocks the response.
 *
 * Every server's Fastify app gets the hook (common.ts createApp); the allowed origins are set,
 * and may be changed, afterwards with `allowOrigins(app, origins)` (the hub does so for each
 * service). Preflights are answered before routing and before any service work.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Headers the SDK's HTTP clients send (request signatures, Privacy Pass tokens). */
const ALLOWED_REQUEST_HEADERS = ['authorization', 'content-type', 'content-digest', 'signature', 'signature-input', 'idempotency-key'];
/** Response headers the SDK reads beyond the CORS-safelisted ones. */
const EXPOSED_RESPONSE_HEADERS = ['retry-after', 'www-authenticate', 'location'];
const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE';
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** '*' (any origin) or a set of exact origins. */
type Policy = { readonly any: true } | { readonly any: false; readonly origins: ReadonlySet<string> };

const policies = new WeakMap<FastifyInstance, Policy>();

export class CorsOriginError extends Error {
  override readonly name = 'CorsOriginError';
}

/** `scheme://host[:port]` exactly as a browser sends it in `Origin`; anything else is refused. */
export function normalizeOrigin(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CorsOriginError(`not an origin: ${JSON.stringify(text)} (expected e.g. http://127.0.0.1:7705)`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== text.replace(/\/$/, '')) {
    throw new CorsOriginError(`not an origin: ${JSON.stringify(text)} (scheme://host[:port], no path)`);
  }
  return url.origin;
}

/** Sets the origins `app` answers CORS requests for ('*' = any); replaces the previous list. */
export function allowOrigins(app: FastifyInstance, origins: readonly string[]): void {
  if (origins.includes('*')) {
    policies.set(app, { any: true });
    return;
  }
  policies.set(app, { any: false, origins: new Set(origins.map(normalizeOrigin)) });
}

function allowed(app: FastifyInstance, origin: string): boolean {
  const policy = policies.get(app);
  if (policy === undefined) return false;
  return policy.any || policy.origins.has(origin);
}

/** Registers the CORS hook on a service's app (before its routes). */
export function registerCors(app: FastifyInstance): void {
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return;
    reply.header('vary', 'Origin');
    if (!allowed(app, origin)) return;
    reply.header('access-control-allow-origin', origin);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      reply
        .header('access-control-allow-methods', ALLOWED_METHODS)
        .header('access-control-allow-headers', ALLOWED_REQUEST_HEADERS.join(', '))
        .header('access-control-max-age', String(PREFLIGHT_MAX_AGE_SECONDS))
        .code(204)
        .send();
      return reply;
    }
    reply.header('access-control-expose-headers', EXPOSED_RESPONSE_HEADERS.join(', '));
  });
}
