/**
 * Short invitation links. The full signed invitation (~1.7 KB: the ML-KEM prekey dominates) is
 * sealed under a random 32-byte link key K and stored at a service; the link carries only the
 * service's base URL and K, in the fragment (browsers and HTTP clients never send it):
 *
 *   link    = <service base URL> "/i#" base64url(K)                 (≤ 100 characters)
 *   locator = SHA-256(LABEL_INVITATION_LINK_LOCATOR ‖ K)            (the blob's name at the service)
 *   key     = HKDF-SHA256(ikm = K, salt = empty, info = LABEL_INVITATION_LINK_KEY, 32)
 *   blob    = 0x01 ‖ nonce (12) ‖ ChaCha20-Poly1305(key, nonce, SignedInvitation, aad = 0x01 ‖ locator)
 *
 * The service sees the locator and the ciphertext, never K: it can neither read the invitation
 * nor replace it (a substituted blob fails the AEAD), and the opened invitation is still checked
 * as any other (signature, expiry) by parseInvitation. docs/PROTOCOL.md "Short invitation links".
 */
import type { CryptoProvider } from './crypto/provider.ts';
import { concat, fromBase64Url, toBase64Url } from './bytes.ts';
import { UmbraError } from './errors.ts';
import { LABEL_INVITATION_LINK_KEY, LABEL_INVITATION_LINK_LOCATOR } from './labels.ts';

export const INVITATION_LINK_KEY_BYTES = 32;
export const INVITATION_LINK_PATH = '/i';
export const INVITATION_BLOB_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Largest blob a service stores (a signed invitation with the largest avatar is far below). */
export const MAX_INVITATION_BLOB_BYTES = 8192;
/** Longest link accepted by parseInvitationLink (the ones made here are ≤ 100 characters for usual hosts). */
export const MAX_INVITATION_LINK_CHARS = 512;

/** The blob's name at the service: 32 bytes, base64url (43 characters) in the URL path. */
export function invitationLinkLocator(crypto: CryptoProvider, linkKey: Uint8Array): Uint8Array {
  checkLinkKey(linkKey);
  return crypto.sha256(concat(LABEL_INVITATION_LINK_LOCATOR, linkKey));
}

function blobKey(crypto: CryptoProvider, linkKey: Uint8Array): Uint8Array {
  return crypto.hkdfSha256(linkKey, new Uint8Array(0), LABEL_INVITATION_LINK_KEY, 32);
}

function checkLinkKey(linkKey: Uint8Array): void {
  if (!(linkKey instanceof Uint8Array) || linkKey.length !== INVITATION_LINK_KEY_BYTES) {
    throw new UmbraError('invalid-argument', `a link key is ${INVITATION_LINK_KEY_BYTES} bytes`);
  }
}

/** Seals an encoded SignedInvitation for storage under the link key's locator. `nonce` only for test vectors. */
export function sealInvitationBlob(crypto: CryptoProvider, linkKey: Uint8Array, signedInvitation: Uint8Array, nonce?: Uint8Array): Uint8Array {
  const locator = invitationLinkLocator(crypto, linkKey);
  const n = nonce ?? crypto.randomBytes(NONCE_BYTES);
  if (n.length !== NONCE_BYTES) throw new UmbraError('invalid-argument', `a nonce is ${NONCE_BYTES} bytes`);
  const head = Uint8Array.of(INVITATION_BLOB_VERSION);
  const sealed = crypto.aeadSeal(blobKey(crypto, linkKey), n, signedInvitation, concat(head, locator));
  const blob = concat(head, n, sealed);
  if (blob.length > MAX_INVITATION_BLOB_BYTES) throw new UmbraError('invalid-argument', `the sealed invitation exceeds ${MAX_INVITATION_BLOB_BYTES} bytes`);
  return blob;
}

/**
 * Opens a blob fetched for a link: the encoded SignedInvitation (not yet verified: hand it to
 * parseInvitation). A blob that is not the one sealed under this key (wrong key, another
 * locator's blob, truncated, altered) throws invitation-malformed.
 */
export function openInvitationBlob(crypto: CryptoProvider, linkKey: Uint8Array, blob: Uint8Array): Uint8Array {
  const locator = invitationLinkLocator(crypto, linkKey);
  if (blob.length < 1 + NONCE_BYTES + TAG_BYTES || blob.length > MAX_INVITATION_BLOB_BYTES) {
    throw new UmbraError('invitation-malformed', 'the stored invitation has a bad length');
  }
  if (blob[0] !== INVITATION_BLOB_VERSION) throw new UmbraError('invitation-unsupported-version', `stored invitation version ${blob[0]} is not supported`);
  const opened = crypto.aeadOpen(blobKey(crypto, linkKey), blob.subarray(1, 1 + NONCE_BYTES), blob.subarray(1 + NONCE_BYTES), concat(blob.subarray(0, 1), locator));
  if (opened === null) throw new UmbraError('invitation-malformed', 'the stored invitation does not match the link');
  return opened;
}

export interface InvitationLink {
  /** The service's base URL (no trailing slash): the blob is at `${serviceUrl}/v1/invitation-blob/<locator>`. */
  readonly serviceUrl: string;
  readonly linkKey: Uint8Array;
}

function baseOf(serviceUrl: string): URL {
  let url: URL;
  try {
    url = new URL(serviceUrl);
  } catch {
    throw new UmbraError('invalid-argument', 'the service URL is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UmbraError('invalid-argument', 'the service URL must be http(s)');
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new UmbraError('invalid-argument', 'the service URL must have no query, fragment or credentials');
  }
  return url;
}

/** `<service>/i#<base64url(K)>`. */
export function invitationLink(serviceUrl: string, linkKey: Uint8Array): string {
  checkLinkKey(linkKey);
  const url = baseOf(serviceUrl);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}${INVITATION_LINK_PATH}#${toBase64Url(linkKey)}`;
}

/** Whether a pasted text is meant as a short link (so a bad one gets the link's error, not the long form's). */
export function looksLikeInvitationLink(text: string): boolean {
  return /^https?:\/\//i.test(text.trim());
}

/** Parses a short link; throws invitation-malformed for anything else. */
export function parseInvitationLink(text: string): InvitationLink {
  const trimmed = text.trim();
  const bad = (why: string) => new UmbraError('invitation-malformed', `not an invitation link: ${why}`);
  if (trimmed.length > MAX_INVITATION_LINK_CHARS) throw bad('too long');
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw bad('not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad('not http(s)');
  if (url.search !== '' || url.username !== '' || url.password !== '') throw bad('it has a query or credentials');
  if (!url.pathname.endsWith(INVITATION_LINK_PATH)) throw bad(`its path does not end in ${INVITATION_LINK_PATH}`);
  const linkKey = fromBase64Url(url.hash.slice(1));
  if (linkKey === null || linkKey.length !== INVITATION_LINK_KEY_BYTES) throw bad('its key is missing or malformed');
  const base = url.pathname.slice(0, -INVITATION_LINK_PATH.length);
  return { serviceUrl: url.origin + base, linkKey };
}

/** The blob's path at the service: `/v1/invitation-blob/<base64url(locator)>`. */
export function invitationBlobPath(crypto: CryptoProvider, linkKey: Uint8Array): string {
  return `/v1/invitation-blob/${toBase64Url(invitationLinkLocator(crypto, linkKey))}`;
}

/** JSON of PUT /v1/invitation-blob/<locator> (paid with a token) and of its GET answer. */
export interface InvitationBlobJson {
  /** base64url of the blob. */
  readonly blob: string;
  /** Unix seconds; the service deletes the blob after it (at most its max TTL from the PUT). */
  readonly expires_at: number;
}
