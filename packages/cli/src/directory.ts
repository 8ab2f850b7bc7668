/**
 * Directory commands: `umbra register <name>`, `umbra contact <name@directory>`,
 * `umbra verify <conversation>` (safety number and log status), `umbra requests` (first contacts,
 * including those through a directory, and approval requests for your names), `umbra monitor`.
 *
 * Each directory's state (pinned keys, checkpoint, monitoring) is kept in
 * <data>/directories/<host_port>.json; the first one used becomes the default. Contacts cost a
 * token: with --hub it comes from the client's services account, else from --issuer.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryClient, DirectoryError, ServicesDelivery, parseNameAddress, type Client, type OpenDirectoryOptions } from '@umbra/client/node';
import { CliError } from './errors.ts';
import { printJson, qrForTerminal } from './format.ts';
import { findConversation, openSession, type GlobalOptions, type Session } from './session.ts';
import { readConfig, transportFromFlags } from './config.ts';
import { hubServices } from './transport.ts';

interface DirectoryFlags {
  directory?: string;
  issuer?: string;
}

function dirsPath(g: GlobalOptions): string {
  return join(g.data, 'directories');
}

function stateFileFor(g: GlobalOptions, url: string): string {
  const u = new URL(url);
  return join(dirsPath(g), `${u.host.replace(/[^A-Za-z0-9.-]/g, '_')}.json`);
}

function normalizeUrl(url: string): string {
  try {
    const u = new URL(/^https?:\/\//.test(url) ? url : `http://${url}`);
    return `${u.protocol}//${u.host}`;
  } catch {
    throw new CliError(`"${url}" is not a directory address (http://host:port)`);
  }
}

/** The hub's issuer (tokens) and directory (port + 4), when the transport is a hub. */
function hubDefaults(g: GlobalOptions): { issuer?: string; directory?: string } {
  const t = transportFromFlags(g) ?? readConfig(g.data)?.transport ?? null;
  if (t === null || t.kind !== 'hub') return {};
  const services = hubServices(t.url);
  const parts = t.url.split(',');
  if (parts.length > 1) return { issuer: services.issuer };
  const u = new URL(services.issuer);
  return { issuer: services.issuer, directory: `${u.protocol}//${u.hostname}:${Number(u.port) + 4}` };
}

function defaultDirectory(g: GlobalOptions, flags: DirectoryFlags): string {
  if (flags.directory) return normalizeUrl(flags.directory);
  const file = join(dirsPath(g), 'default');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const hub = hubDefaults(g).directory;
  if (hub) return hub;
  throw new CliError('which directory? pass --directory http://host:port (a hub\'s directory is its first port + 4)');
}

/**
 * How a directory is paid (contacts, anonymous lookups): with --hub, the client's services
 * account; otherwise an account of the directory client's own at --issuer (or the hub's issuer).
 */
function payment(g: GlobalOptions, session: Session, flags: DirectoryFlags): Pick<OpenDirectoryOptions, 'tokens' | 'issuer'> {
  if (flags.issuer === undefined && session.delivery instanceof ServicesDelivery) return { tokens: session.delivery };
  const issuer = flags.issuer ?? hubDefaults(g).issuer;
  return issuer === undefined ? {} : { issuer };
}

async function withDirectory<T>(g: GlobalOptions, url: string, flags: DirectoryFlags, fn: (d: DirectoryClient, c: Client) => Promise<T>): Promise<T> {
  const session = await openSession(g.data, transportFromFlags(g));
  mkdirSync(dirsPath(g), { recursive: true, mode: 0o700 });
  let d: DirectoryClient | null = null;
  try {
    try {
      d = await DirectoryClient.open({ client: session.client, url, stateFile: stateFileFor(g, url), ...payment(g, session, flags) });
    } catch (e) {
      if (e instanceof DirectoryError) throw new CliError(e.message);
      throw new CliError(`cannot reach the directory at ${url}: ${(e as Error).message}`);
    }
    if (!existsSync(join(dirsPath(g), 'default'))) writeFileSync(join(dirsPath(g), 'default'), url + '\n', { mode: 0o600 });
    return await fn(d, session.client);
  } catch (e) {
    if (e instanceof DirectoryError) throw new CliError(e.code === 'rate-limited' && e.retryAfterS !== undefined ? `${e.message} (try again in ${e.retryAfterS} s)` : e.message);
    throw e;
  } finally {
    d?.close();
    await session.close();
  }
}

/** Every directory this identity has used (for verify, requests and monitor). */
function knownDirectories(g: GlobalOptions): string[] {
  if (!existsSync(dirsPath(g))) return [];
  const out: string[] = [];
  for (const f of readdirSync(dirsPath(g))) {
    if (!f.endsWith('.json')) continue;
    try {
      out.push((JSON.parse(readFileSync(join(dirsPath(g), f), 'utf8')) as { url: string }).url);
    } catch {
      // not ours
    }
  }
  return out;
}

async function withAllDirectories<T>(g: GlobalOptions, fn: (ds: DirectoryClient[], c: Client) => Promise<T>): Promise<T> {
  const session = await openSession(g.data, transportFromFlags(g));
  const ds: DirectoryClient[] = [];
  try {
    for (const url of knownDirectories(g)) {
      try {
        ds.push(await DirectoryClient.open({ client: session.client, url, stateFile: stateFileFor(g, url), ...payment(g, session, {}) }));
      } catch (e) {
        console.error(`umbra: directory ${url} unavailable: ${(e as Error).message}`);
      }
    }
    return await fn(ds, session.client);
  } finally {
    for (const d of ds) d.close();
    await session.close();
  }
}

export async function register(g: GlobalOptions, name: string, opts: DirectoryFlags & { policy?: string; packages: string }): Promise<void> {
  const packages = Number(opts.packages);
  if (!Number.isInteger(packages) || packages < 0 || packages > 100) throw new CliError('--packages must be 0..100');
  const policy = opts.policy;
  if (policy !== undefined && !['open', 'members', 'approval', 'closed'].includes(policy)) throw new CliError('--policy must be open, members, approval or closed');
  const url = defaultDirectory(g, opts);
  await withDirectory(g, url, opts, async (d) => {
    const r = await d.register(name, { packages, ...(policy ? { policy: policy as 'open' } : {}) });
    const address = `${name}@${new URL(url).host}`;
    if (g.json) printJson({ name, address, namespace: d.namespace, version: r.version, packages: r.packages });
    else {
      console.log(`Registered ${address} (namespace ${d.namespace}, key version ${r.version}); ${r.packages} first-contact packages available.`);
      console.log(`People reach you with: umbra contact ${address}`);
    }
  });
}

export async function contact(g: GlobalOptions, address: string, opts: DirectoryFlags & { note?: string; request?: string }): Promise<void> {
  const { name, url } = parseNameAddress(address.replace(/^https?:\/\//, ''));
  await withDirectory(g, normalizeUrl(url), opts, async (d) => {
    let conv;
    try {
      conv = opts.request ? await d.contactPending(name, opts.request) : await d.contact(name, opts.note ? { note: opts.note } : {});
    } catch (e) {
      if (e instanceof DirectoryError && e.code === 'pending') {
        const id = (e as DirectoryError & { requestId: string }).requestId;
        if (g.json) printJson({ state: 'pending', requestId: id });
        else console.log(`${name} approves first contacts. Asked; check later with: umbra contact ${address} --request ${id}`);
        return;
      }
      throw e;
    }
    if (conv === null) {
      if (g.json) printJson({ state: 'pending', requestId: opts.request });
      else console.log(`Still waiting for ${name} to approve.`);
      return;
    }
    if (g.json) printJson({ state: 'started', conversation: conv, directory: d.conversationStatus(conv.id) });
    else {
      console.log(`Started a conversation with ${conv.peerName || name} (${conv.id.slice(0, 8)}) through ${address}; the directory's key for ${name} checked out against its log.`);
      console.log(`They see it as a request until they accept. Safety number: ${conv.safetyNumber}`);
    }
  });
}

export async function verify(g: GlobalOptions, ref: string, opts: { qr: boolean }): Promise<void> {
  await withAllDirectories(g, async (ds, c) => {
    const conv = findConversation(c, ref);
    const related = ds.map((d) => ({ d, rel: d.conversationStatus(conv.id) })).find((x) => x.rel !== null);
    const logs = ds.map((d) => d.status());
    if (g.json) {
      printJson({ id: conv.id, peerName: conv.peerName, safetyNumber: conv.safetyNumber, directory: related?.rel ?? null, logs });
      return;
    }
    console.log(`Safety number with ${conv.peerName}:\n`);
    const groups = conv.safetyNumber.split(' ');
    for (let i = 0; i < groups.length; i += 4) console.log('  ' + groups.slice(i, i + 4).join('  '));
    if (opts.qr) console.log('\n' + (await qrForTerminal(`umbra_safety_1_${conv.safetyNumber.replace(/ /g, '')}`)));
    console.log('\nCompare these digits with the ones on their screen. If they match, nobody is in the middle.');
    if (related?.rel) {
      const r = related.rel;
      console.log(`\nStarted through the directory name ${r.name}${r.role === 'owner' ? ' (yours)' : ` (key version ${r.version}, fingerprint ${r.keyFingerprint})`}.`);
    }
    for (const s of logs) {
      const state = s.splitViews.length > 0 ? 'SPLIT VIEW DETECTED' : s.alerts.length > 0 ? `${s.alerts.length} key alert(s)` : 'consistent';
      console.log(`Directory ${s.url} (${s.namespace}): checkpoint ${s.checkpointSize ?? 'none yet'}, monitored ${s.monitoredUpTo} entries, ${state}.`);
      for (const a of s.alerts) console.log(`  ! ${a.message}`);
    }
  });
}

export async function requests(g: GlobalOptions): Promise<void> {
  await withAllDirectories(g, async (ds, c) => {
    const reqs = c.requests();
    const approvals: { directory: string; name: string; id: string; note: string }[] = [];
    for (const d of ds) {
      for (const n of d.status().names) {
        try {
          for (const r of await d.pendingRequests(n.name)) approvals.push({ directory: d.status().url, name: n.name, id: r.id, note: r.note });
        } catch {
          // the directory may be down; first contacts above still show
        }
      }
    }
    if (g.json) {
      printJson({ requests: reqs, approvals });
      return;
    }
    if (reqs.length === 0 && approvals.length === 0) console.log('No requests.');
    for (const r of reqs) console.log(`${r.peerName || '(no name)'}  ${r.id}  (${r.unreadCount} messages)`);
    if (reqs.length > 0) console.log('\n"umbra allow <id>" to accept, "umbra block <id>" to drop silently.');
    for (const a of approvals) console.log(`asks to contact ${a.name}: "${a.note}"  (umbra approve ${a.name} ${a.id} [--deny])`);
  });
}

export async function approve(g: GlobalOptions, name: string, id: string, opts: DirectoryFlags & { deny?: boolean }): Promise<void> {
  await withDirectory(g, defaultDirectory(g, opts), opts, async (d) => {
    await d.decide(name, id, opts.deny ? 'deny' : 'approve');
    if (g.json) printJson({ name, id, decision: opts.deny ? 'deny' : 'approve' });
    else console.log(opts.deny ? 'Denied.' : 'Approved: they can now start a conversation (you will see it as a request).');
  });
}

export async function monitor(g: GlobalOptions): Promise<void> {
  await withAllDirectories(g, async (ds) => {
    const out = [];
    for (const d of ds) {
      const alerts = await d.monitorNow();
      out.push({ ...d.status(), newAlerts: alerts });
      if (!g.json) console.log(`${d.status().url}: checked ${d.status().monitoredUpTo} entries, ${alerts.length === 0 ? 'no unexpected keys' : `${alerts.length} UNEXPECTED KEY(S)`}`);
      if (!g.json) for (const a of alerts) console.log(`  ! ${a.message}`);
    }
    if (g.json) printJson(out);
    else if (ds.length === 0) console.log('No directories yet ("umbra register <name>").');
  });
}
