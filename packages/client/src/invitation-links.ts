/**
 * Short invitation links (docs/PROTOCOL.md "Short invitation links"): the full invitation,
 * sealed under a fresh link key, stored at a directory (PUT /v1/invitation-blob, paid with one
 * token), and the link `<directory>/i#<key>` that fetches and opens it. Opening only moves bytes:
 * the invitation is then parsed and verified as the string form is. Platform-neutral (fetch).
 * Runs outside the client's operation queue (network calls never hold it).
 */
import {
  INVITATION_PREFIX,
  MAX_INVITATION_BLOB_BYTES,
  fromBase64Url,
  invitationBlobPath,
  invitationLink,
  invitationText,
  openInvitationBlob,
  parseInvitationLink,
  sealInvitationBlob,
  toBase64Url,
  UmbraError,
  type CryptoProvider,
  type InvitationBlobJson,
} from '@umbra/protocol';
import { authorizationHeader } from '@umbra/protocol/services';
import { fetchDescriptor, tokenInfoFromJson, type TokenInfo } from './services/http/descriptor.ts';
import { ClientError, toClientError } from './errors.ts';

/** Where the token paying for the stored blob comes from (ServicesDelivery has this). */
export interface LinkTokenSource {
  tokensFor(info: TokenInfo, count: number): Promise<Uint8Array[]>;
}

export interface ShortLinkOptions {
  /** Base URL of the directory that stores the sealed invitation (the hub's `directory`). */
  readonly service: string;
  /** Default: the client's services delivery. */
  readonly tokens?: LinkTokenSource;
}

export interface PublishedLink {
  readonly link: string;
  /** Unix seconds: the service forgets the blob then (the invitation's expiry, at most 7 days ahead). */
  readonly expiresAt: number;
}

/** The services keep a blob at most this long (docs/SERVICES.md "Invitation blobs"). */
export const MAX_LINK_LIFETIME_S = 7 * 86_400;
const REQUEST_TIMEOUT_MS = 15_000;
/** An answer larger than this is not a blob answer (base64url of 8 KiB plus its JSON). */
const MAX_ANSWER_CHARS = Math.ceil((MAX_INVITATION_BLOB_BYTES * 4) / 3) + 256;

export function isLinkTokenSource(x: unknown): x is LinkTokenSource {
  return typeof (x as Partial<LinkTokenSource> | null)?.tokensFor === 'function';
}

function unreachable(what: string, e: unknown): ClientError {
  return new ClientError('delivery-failed', `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

async function problemText(res: Response): Promise<string> {
  const text = (await res.text().catch(() => '')).slice(0, 2000);
  try {
    const j = JSON.parse(text) as { title?: unknown; detail?: unknown };
    return [j.title, j.detail].filter((x) => typeof x === 'string').join(': ') || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

/**
 * Seals `invitation` (its string form) under a fresh key, stores it at `options.service` and
 * returns the link. `invitationExpiresAt` is the invitation's (unix s, 0 = never).
 */
export async function publishInvitationLink(crypto: CryptoProvider, invitation: string, invitationExpiresAt: number, nowMs: number, options: ShortLinkOptions & { tokens: LinkTokenSource }): Promise<PublishedLink> {
  if (!invitation.startsWith(INVITATION_PREFIX)) throw new ClientError('invalid-argument', 'not an invitation');
  const signed = fromBase64Url(invitation.slice(INVITATION_PREFIX.length));
  if (signed === null) throw new ClientError('invalid-argument', 'not an invitation');
  const linkKey = crypto.randomBytes(32);
  let blob: Uint8Array;
  let link: string;
  try {
    link = invitationLink(options.service, linkKey);
    blob = sealInvitationBlob(crypto, linkKey, signed);
  } catch (e) {
    throw e instanceof UmbraError && e.code === 'invalid-argument' ? new ClientError('invalid-argument', `no short link: ${e.message}`) : toClientError(e);
  }
  const { serviceUrl } = parseInvitationLink(link);
  const nowS = Math.floor(nowMs / 1000);
  const expiresAt = invitationExpiresAt === 0 ? nowS + MAX_LINK_LIFETIME_S : Math.min(invitationExpiresAt, nowS + MAX_LINK_LIFETIME_S);
  if (expiresAt <= nowS) throw new ClientError('invitation-expired', 'the invitation has expired');
  let token: TokenInfo | null;
  try {
    token = tokenInfoFromJson((await fetchDescriptor(serviceUrl, undefined, crypto)).body.token);
  } catch (e) {
    throw unreachable('the directory for the short link did not answer', e);
  }
  if (token === null) throw new ClientError('delivery-failed', 'this directory takes no tokens, so it stores no invitations for short links');
  const [paid] = await options.tokens.tokensFor(token, 1).catch((e: unknown) => {
    throw unreachable('no token for the short link', e);
  });
  if (paid === undefined) throw new ClientError('delivery-failed', 'no token for the short link');
  const body: InvitationBlobJson = { blob: toBase64Url(blob), expires_at: expiresAt };
  let res: Response;
  try {
    res = await fetch(serviceUrl + invitationBlobPath(crypto, linkKey), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: authorizationHeader(paid) },
      body: JSON.stringify(body),
      redirect: 'error',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (e) {
    throw unreachable('storing the short link failed', e);
  }
  if (res.status !== 201) throw new ClientError('delivery-failed', `storing the short link failed: ${await problemText(res)}`);
  await res.body?.cancel().catch(() => undefined);
  return { link, expiresAt };
}

/** The body as text, or null once it passes `maxBytes` (the rest is not read: a hostile service cannot make us buffer it). */
async function boundedText(res: Response, maxBytes: number): Promise<string | null> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

/**
 * The invitation (string form) behind a short link: fetched, opened under the link's key. Not
 * verified here: the caller parses it as any invitation. Typed errors: invitation-malformed (not
 * a link, nothing stored, a blob that does not open), invitation-expired (410), delivery-failed.
 */
export async function fetchInvitationFromLink(crypto: CryptoProvider, link: string): Promise<string> {
  let parsed;
  try {
    parsed = parseInvitationLink(link);
  } catch (e) {
    throw toClientError(e);
  }
  let res: Response;
  try {
    // No redirects: the blob is at the link's service or nowhere.
    res = await fetch(parsed.serviceUrl + invitationBlobPath(crypto, parsed.linkKey), { redirect: 'error', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (e) {
    throw unreachable('the invitation link\'s service did not answer', e);
  }
  if (res.status === 404) throw new ClientError('invitation-malformed', 'no invitation is stored for this link (mistyped, or removed after it expired)');
  if (res.status === 410) throw new ClientError('invitation-expired', 'the invitation behind this link has expired');
  if (res.status !== 200) throw new ClientError('delivery-failed', `fetching the invitation failed: ${await problemText(res)}`);
  const text = await boundedText(res, MAX_ANSWER_CHARS).catch((e: unknown) => {
    throw unreachable('fetching the invitation failed', e);
  });
  let j: Partial<InvitationBlobJson> | null;
  try {
    j = text === null ? null : (JSON.parse(text) as Partial<InvitationBlobJson>);
  } catch {
    j = null;
  }
  const blob = typeof j?.blob === 'string' ? fromBase64Url(j.blob) : null;
  if (blob === null) throw new ClientError('invitation-malformed', 'the service answered something that is not a stored invitation');
  try {
    return invitationText(openInvitationBlob(crypto, parsed.linkKey, blob));
  } catch (e) {
    throw toClientError(e);
  }
}
