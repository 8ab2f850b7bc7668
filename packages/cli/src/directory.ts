/**
 * Directory commands: `umbra register <name>`, `umbra contact <name@directory>`, `umbra verify`
 * (safety number, --mark, and the directory log status), `umbra requests` (first contacts and
 * approval requests for your names), `umbra approve`, `umbra monitor`.
 *
 * Each directory client keeps its state in the store; the CLI keeps the list of directories it
 * used (the first is the default) in its settings. Directory state files of earlier releases
 * (<data>/directories/*.json) are imported into the store the first time they are opened.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DirectoryClient, DirectoryError, ServicesDelivery, type OpenDirectoryOptions } from '@umbra/client/node';
import { CliError, usage } from './errors.ts';
import { conversationJson, type ConversationJson } from './format.ts';
import { allConversations, findConversation, verifyText, type Context, type Result } from './commands.ts';
import { hubDirectory, hubServices } from './transport.ts';
import { readJsonSetting } from './settings.ts';
import type { Session } from './session.ts';

const DIRECTORIES = 'cli.directories';

interface DirectoriesDoc {
  urls: string[];
}
const isDoc = (v: unknown): v is DirectoriesDoc => Array.isArray((v as DirectoriesDoc | null)?.urls) && (v as DirectoriesDoc).urls.every((u) => typeof u === 'string');

export function normalizeUrl(url: string): string {
  try {
    const u = new URL(/^https?:\/\//.test(url) ? url : `http://${url}`);
    return `${u.protocol}//${u.host}`;
  } catch {
    throw usage(`"${url}" is not a directory address`, 'expected http://host:port');
  }
}

const legacyDir = (s: Session) => join(s.dataDir, 'directories');
const legacyFile = (s: Session, url: string) => join(legacyDir(s), `${new URL(url).host.replace(/[^A-Za-z0-9.-]/g, '_')}.json`);

/** The directories used so far (default first), including those only an earlier release's files know. */
async function knownDirectories(s: Session): Promise<string[]> {
  const urls = (await readJsonSetting(s.settings, DIRECTORIES, isDoc))?.urls ?? [];
  const dir = legacyDir(s);
  if (!existsSync(dir)) return urls;
  const found: string[] = [];
  const defaultFile = join(dir, 'default');
  if (existsSync(defaultFile)) found.push(readFileSync(defaultFile, 'utf8').trim());
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    try {
      found.push((JSON.parse(readFileSync(join(dir, f), 'utf8')) as { url: string }).url);
    } catch {
      // not a directory state file
    }
  }
  const merged = [...urls, ...found.filter((u) => typeof u === 'string' && u !== '').map(normalizeUrl)].filter((u, i, a) => a.indexOf(u) === i);
  if (merged.length !== urls.length) await s.settings.set({ [DIRECTORIES]: JSON.stringify({ urls: merged }) });
  return merged;
}

async function remember(s: Session, url: string): Promise<void> {
  const urls = await knownDirectories(s);
  if (!urls.includes(url)) await s.settings.set({ [DIRECTORIES]: JSON.stringify({ urls: [...urls, url] }) });
  // The legacy default file is in the list now; the state files go as each directory is opened.
  rmSync(join(legacyDir(s), 'default'), { force: true });
}

async function defaultDirectory(s: Session, flag: string | undefined): Promise<string> {
  if (flag !== undefined) return normalizeUrl(flag);
  const first = (await knownDirectories(s))[0];
  if (first !== undefined) return first;
  const hub = s.transport.kind === 'hub' ? hubDirectory(s.transport.url) : null;
  if (hub !== null) return hub;
  throw usage('which directory?', "pass --directory http://host:port (a hub's directory is its first port + 4)");
}

/** How a directory is paid: with --hub, the client's services account; otherwise an account at the hub's issuer, if any. */
function payment(s: Session): Pick<OpenDirectoryOptions, 'tokens' | 'issuer'> {
  if (s.delivery instanceof ServicesDelivery) return { tokens: s.delivery };
  return s.transport.kind === 'hub' ? { issuer: hubServices(s.transport.url).issuer } : {};
}

export function directoryError(e: unknown): never {
  if (e instanceof DirectoryError) {
    if (e.code === 'rate-limited') throw new CliError('rate-limited', e.message, e.retryAfterS !== undefined ? { hint: `try again in ${e.retryAfterS} s` } : {});
    if (e.code === 'invalid-argument') throw new CliError('usage', e.message);
    if (e.code === 'not-registered') throw new CliError('not-found', e.message);
    throw new CliError('directory', e.message);
  }
  throw e;
}

async function open(s: Session, url: string): Promise<DirectoryClient> {
  try {
    const d = await DirectoryClient.open({ client: s.client, url, legacyStateFile: legacyFile(s, url), ...payment(s) });
    await remember(s, url);
    return d;
  } catch (e) {
    if (e instanceof DirectoryError) directoryError(e);
    throw new CliError('unreachable', `cannot reach the directory at ${url}: ${(e as Error).message}`, { hint: 'is it running? "umbra hub" runs one on its first port + 4' });
  }
}

async function withDirectory<T>(s: Session, url: string, fn: (d: DirectoryClient) => Promise<T>): Promise<T> {
  const d = await open(s, url);
  try {
    return await fn(d).catch(directoryError);
  } finally {
    await d.close();
  }
}

/** Every directory this identity has used that answers now; the others are reported as warnings. */
async function withAll<T>(s: Session, fn: (ds: DirectoryClient[], warnings: string[]) => Promise<T>): Promise<T> {
  const ds: DirectoryClient[] = [];
  const warnings: string[] = [];
  try {
    for (const url of await knownDirectories(s)) {
      try {
        ds.push(await open(s, url));
      } catch (e) {
        warnings.push(`directory ${url} unavailable: ${(e as Error).message}`);
      }
    }
    return await fn(ds, warnings);
  } finally {
    for (const d of ds) await d.close();
  }
}

export async function register(ctx: Context, p: { name: string; directory?: string; policy?: 'open' | 'members' | 'approval' | 'closed'; packages: number }): Promise<Result> {
  const s = ctx.session;
  const url = await defaultDirectory(s, p.directory);
  return withDirectory(s, url, async (d) => {
    const r = await d.register(p.name, { packages: p.packages, ...(p.policy !== undefined ? { policy: p.policy } : {}) });
    const address = `${p.name}@${new URL(url).host}`;
    return {
      json: { registration: { name: p.name, address, namespace: d.namespace, version: r.version, packages: r.packages } },
      text: `Registered ${address} (key version ${r.version}); ${r.packages} first-contact packages available.\nPeople reach you with: umbra contact ${address}`,
    };
  });
}

export async function contact(ctx: Context, p: { name: string; url: string; note?: string; request?: string }): Promise<Result> {
  const s = ctx.session;
  const address = `${p.name}@${new URL(p.url).host}`;
  return withDirectory(s, p.url, async (d) => {
    let conv;
    try {
      conv = p.request !== undefined ? await d.contactPending(p.name, p.request) : await d.contact(p.name, p.note !== undefined ? { note: p.note } : {});
    } catch (e) {
      if (e instanceof DirectoryError && e.code === 'pending') {
        const id = (e as DirectoryError & { requestId: string }).requestId;
        return { json: { contact: { state: 'pending', address, requestId: id, conversation: null } }, text: `${p.name} approves first contacts. Asked; check later with: umbra contact ${address} --request ${id}` };
      }
      throw e;
    }
    if (conv === null) return { json: { contact: { state: 'pending', address, requestId: p.request ?? null, conversation: null } }, text: `Still waiting for ${p.name} to approve.` };
    await allConversations(s);
    const j = await conversationJson(s, conv);
    return {
      json: { contact: { state: 'started', address, requestId: null, conversation: j } },
      text: `Sent a first contact to ${p.name} (${j.handle}) through ${address}; the directory's key for ${p.name} checked out against its log.\nThey see it as a request until they accept. Safety number: ${j.safetyNumber}`,
    };
  });
}

export async function approve(ctx: Context, p: { name: string; id: string; deny: boolean; directory?: string }): Promise<Result> {
  const s = ctx.session;
  return withDirectory(s, await defaultDirectory(s, p.directory), async (d) => {
    await d.decide(p.name, p.id, p.deny ? 'deny' : 'approve');
    return { json: { decision: { name: p.name, requestId: p.id, decision: p.deny ? 'deny' : 'approve' } }, text: p.deny ? 'Denied.' : 'Approved: they can now start a conversation (you will see it as a request).' };
  });
}

export async function verify(ctx: Context, p: { ref: string; mark: boolean }): Promise<Result> {
  const s = ctx.session;
  const conv = await findConversation(s, p.ref);
  if (p.mark) {
    s.names.markVerified(conv.id, conv.safetyNumber);
    await s.names.save();
  }
  const cj = await conversationJson(s, conv);
  return withAll(s, async (ds, warnings) => {
    const related = ds.map((d) => d.conversationStatus(conv.id)).find((x) => x !== null) ?? null;
    const logs = ds.map((d) => d.status()).map((st) => ({ url: st.url, namespace: st.namespace, checkpoint: st.checkpointSize ?? null, monitoredUpTo: st.monitoredUpTo, splitView: st.splitViews.length > 0, alerts: st.alerts.map((a) => a.message) }));
    const lines = [await verifyText(cj, p.mark)];
    if (related !== null) lines.push(`\nStarted through the directory name ${related.name}${related.role === 'owner' ? ' (yours)' : ` (key version ${related.version}, fingerprint ${related.keyFingerprint})`}.`);
    for (const l of logs) {
      const state = l.splitView ? 'SPLIT VIEW DETECTED' : l.alerts.length > 0 ? `${l.alerts.length} key alert(s)` : 'consistent';
      lines.push(`Directory ${l.url}: checkpoint ${l.checkpoint ?? 'none yet'}, monitored ${l.monitoredUpTo} entries, ${state}.`);
      for (const a of l.alerts) lines.push(`  ! ${a}`);
    }
    return { json: { conversation: cj, directory: related, logs }, text: lines.join('\n'), qr: `umbra_safety_1_${cj.safetyNumber.replace(/ /g, '')}`, warnings };
  });
}

export async function requests(ctx: Context): Promise<Result> {
  const s = ctx.session;
  await allConversations(s);
  const reqs: ConversationJson[] = [];
  for (const r of await s.client.requests()) reqs.push(await conversationJson(s, r));
  return withAll(s, async (ds, warnings) => {
    const approvals: { type: 'approval'; directory: string; name: string; requestId: string; note: string }[] = [];
    for (const d of ds) {
      for (const n of d.status().names) {
        try {
          for (const r of await d.pendingRequests(n.name)) approvals.push({ type: 'approval', directory: d.status().url, name: n.name, requestId: r.id, note: r.note });
        } catch (e) {
          warnings.push(`directory ${d.status().url}: ${(e as Error).message}`);
        }
      }
    }
    const lines: string[] = [];
    if (reqs.length === 0 && approvals.length === 0) lines.push('No requests.');
    for (const r of reqs) lines.push(`${String(r.number).padStart(3)}  ${r.handle.padEnd(12)} ${r.name}  (${r.unread} message${r.unread === 1 ? '' : 's'})`);
    if (reqs.length > 0) lines.push('\n"umbra allow <handle>" to accept, "umbra block <handle>" to drop silently.');
    for (const a of approvals) lines.push(`asks to contact ${a.name}: "${a.note}"  (umbra approve ${a.name} ${a.requestId} [--deny])`);
    return { json: { requests: reqs, approvals }, text: lines.join('\n'), warnings };
  });
}

export async function monitor(ctx: Context): Promise<Result> {
  const s = ctx.session;
  return withAll(s, async (ds, warnings) => {
    const out = [];
    const lines: string[] = [];
    for (const d of ds) {
      const alerts = await d.monitorNow().catch(directoryError);
      const st = d.status();
      out.push({ url: st.url, namespace: st.namespace, monitoredUpTo: st.monitoredUpTo, newAlerts: alerts.map((a) => a.message) });
      lines.push(`${st.url}: checked ${st.monitoredUpTo} entries, ${alerts.length === 0 ? 'no unexpected keys' : `${alerts.length} UNEXPECTED KEY(S)`}`);
      for (const a of alerts) lines.push(`  ! ${a.message}`);
    }
    if (ds.length === 0) lines.push('No directories yet ("umbra register <name>").');
    return { json: { directories: out }, text: lines.join('\n'), warnings };
  });
}

