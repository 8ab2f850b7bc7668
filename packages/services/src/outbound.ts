/**
 * Outbound HTTP for a service that fetches URLs its callers chose (the SSA: RSA descriptors and
 * deliveries). Guards against SSRF:
 *
 * - https only; plain http only when the operator enables loopback (`allowLoopback`, the hub and
 *   tests), and then only to a loopback address;
 * - the destination IP must be public: private, link-local, CGNAT, loopback (unless enabled),
 *   multicast, unspecified, documentation and reserved ranges are refused, IPv4-mapped IPv6
 *   included. The check runs on the *resolved* address inside the socket's `lookup`, so the
 *   connection goes to the very IP that was checked (a DNS answer that changes between a check
 *   and the connect, "DNS rebinding", cannot slip through). A name with any refused address is
 *   refused as a whole;
 * - redirects are never followed (node:http does not follow them; a 3xx is just a status);
 * - the answer is read up to `maxBytes` and the whole exchange must finish within `timeoutMs`.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

export interface OutboundPolicy {
  /** Allow loopback destinations (127.0.0.0/8, ::1), and plain http to them only. */
  allowLoopback: boolean;
}

export class OutboundRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export type OutboundFailure = 'refused' | 'network' | 'timeout' | 'too-large';

export class OutboundError extends Error {
  /** For 'network': the socket's error code (ECONNREFUSED, ECONNRESET, …) when it had one. */
  readonly code: string | undefined;
  constructor(readonly kind: OutboundFailure, message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

const DENIED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['169.254.0.0', 16], // link-local (cloud metadata)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const)
  DENIED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 96], // unspecified and IPv4-compatible (::1 is handled as loopback first)
  ['64:ff9b::', 96], // NAT64: would reach embedded IPv4 addresses
  ['64:ff9b:1::', 48],
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, …)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const)
  DENIED.addSubnet(net, prefix, 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d, any spelling), else null. */
function mappedIpv4(ip: string): string | null {
  const groups = expandIpv6(ip.toLowerCase());
  if (!groups || groups.slice(0, 5).some((g) => g !== 0) || groups[5] !== 0xffff) return null;
  return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
}

/** The eight 16-bit groups of an IPv6 address (a dotted IPv4 tail becomes two groups), else null. */
function expandIpv6(ip: string): number[] | null {
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (dotted) {
    const b = dotted.slice(2, 6).map(Number);
    if (b.some((x) => x > 255)) return null;
    ip = `${dotted[1]}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = ip.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((h) => (/^[0-9a-f]{1,4}$/.test(h) ? parseInt(h, 16) : NaN)));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || fill < 0) return null;
  const groups = [...head, ...Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g)) ? groups : null;
}

export type IpClass = 'public' | 'loopback' | 'refused';

/** Classifies a literal IP address (v4 or v6, without brackets). Anything unparsable is refused. */
export function classifyIp(ip: string): IpClass {
  const family = isIP(ip);
  if (family === 0) return 'refused';
  const v4 = family === 4 ? ip : mappedIpv4(ip);
  if (v4 !== null) {
    if (LOOPBACK.check(v4, 'ipv4')) return 'loopback';
    return DENIED.check(v4, 'ipv4') ? 'refused' : 'public';
  }
  if (LOOPBACK.check(ip, 'ipv6')) return 'loopback';
  return DENIED.check(ip, 'ipv6') ? 'refused' : 'public';
}

function ipAllowed(ip: string, policy: OutboundPolicy, loopbackOnly: boolean): boolean {
  const c = classifyIp(ip);
  if (c === 'loopback') return policy.allowLoopback;
  return c === 'public' && !loopbackOnly;
}

/**
 * Checks a base URL a caller gave (no DNS here; names are checked when connecting).
 * Returns the URL without trailing slashes, or the reason it is refused.
 */
export function checkServiceUrl(u: unknown, policy: OutboundPolicy): { ok: true; url: string } | { ok: false; reason: string } {
  if (typeof u !== 'string' || u.length > 512) return { ok: false, reason: 'the URL must be a string of at most 512 characters' };
  let p: URL;
  try {
    p = new URL(u);
  } catch {
    return { ok: false, reason: 'not a URL' };
  }
  if (p.username !== '' || p.password !== '' || p.search !== '' || p.hash !== '') return { ok: false, reason: 'the URL must have no credentials, query or fragment' };
  if (p.protocol !== 'https:' && !(p.protocol === 'http:' && policy.allowLoopback))
    return { ok: false, reason: policy.allowLoopback ? 'the URL must be https (or http to loopback)' : 'the URL must be https' };
  const host = p.hostname.startsWith('[') ? p.hostname.slice(1, -1) : p.hostname;
  if (isIP(host) !== 0 && !ipAllowed(host, policy, p.protocol === 'http:')) return { ok: false, reason: 'the URL points to a private, loopback or reserved address' };
  return { ok: true, url: u.replace(/\/+$/, '') };
}

function guardedLookup(policy: OutboundPolicy, loopbackOnly: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { family: options.family, hints: options.hints, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      if (addresses.length === 0 || addresses.some((a) => !ipAllowed(a.address, policy, loopbackOnly)))
        return callback(new OutboundRefused(`${hostname} resolves to a private, loopback or reserved address`), '', 0);
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      else callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}

export interface OutboundRequest {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: Uint8Array;
  timeoutMs: number;
  maxBytes: number;
}

/** Keep-alive HTTP(S) client whose every connection goes through the policy. */
export class OutboundClient {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  constructor(readonly policy: OutboundPolicy) {
    this.httpAgent = new http.Agent({ keepAlive: true, scheduling: 'lifo', lookup: guardedLookup(policy, true) });
    this.httpsAgent = new https.Agent({ keepAlive: true, scheduling: 'lifo', lookup: guardedLookup(policy, false) });
  }

  /** Sends one request; resolves with the status and the body, or rejects with an OutboundError. */
  request(url: string, req: OutboundRequest): Promise<{ status: number; body: Buffer }> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return Promise.reject(new OutboundError('refused', 'not a URL'));
    }
    const base = checkServiceUrl(`${target.protocol}//${target.host}`, this.policy);
    if (!base.ok) return Promise.reject(new OutboundError('refused', base.reason));
    const mod = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (e: OutboundError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        r.destroy();
        reject(e);
      };
      const r = mod.request(
        target,
        {
          method: req.method,
          agent: target.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          headers: { ...req.headers, ...(req.body ? { 'content-length': String(req.body.length) } : {}) },
        },
        (res) => {
          const declared = Number(res.headers['content-length']);
          if (Number.isFinite(declared) && declared > req.maxBytes) return fail(new OutboundError('too-large', `the answer exceeds ${req.maxBytes} bytes`));
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > req.maxBytes) return fail(new OutboundError('too-large', `the answer exceeds ${req.maxBytes} bytes`));
            chunks.push(c);
          });
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
          });
          res.on('error', () => fail(new OutboundError('network', 'the answer broke off')));
        },
      );
      const timer = setTimeout(() => fail(new OutboundError('timeout', `no complete answer within ${req.timeoutMs} ms`)), req.timeoutMs);
      r.on('error', (e: NodeJS.ErrnoException) =>
        fail(e instanceof OutboundRefused ? new OutboundError('refused', e.reason) : new OutboundError('network', 'connection failed', typeof e.code === 'string' ? e.code : undefined)),
      );
      r.end(req.body ? Buffer.from(req.body.buffer, req.body.byteOffset, req.body.byteLength) : undefined);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
