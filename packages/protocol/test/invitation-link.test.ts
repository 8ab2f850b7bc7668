/**
 * Short invitation links (src/invitation-link.ts): the locator, key and blob layout checked
 * against node:crypto computing the same formulas independently, wrong keys and damaged blobs
 * refused with typed errors, and the link's text form.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, hkdfSync } from 'node:crypto';
import { nobleProvider as crypto } from '../src/crypto/noble.ts';
import { createInvitation, parseInvitation, invitationText } from '../src/invitation.ts';
import {
  invitationBlobPath,
  invitationLink,
  invitationLinkLocator,
  openInvitationBlob,
  parseInvitationLink,
  sealInvitationBlob,
  MAX_INVITATION_BLOB_BYTES,
} from '../src/invitation-link.ts';
import { UmbraError } from '../src/errors.ts';

const K = Uint8Array.from({ length: 32 }, (_, i) => i);
const NONCE = Uint8Array.from({ length: 12 }, (_, i) => 0xa0 + i);
const PLAIN = new TextEncoder().encode('a signed invitation');

function code(e: unknown): string {
  assert.ok(e instanceof UmbraError, `expected an UmbraError, got ${String(e)}`);
  return e.code;
}

test('vector: locator, key and blob follow the documented formulas (node:crypto, independently)', () => {
  const locator = createHash('sha256').update('umbra/v1/invitation-link/locator').update(K).digest();
  assert.deepEqual(invitationLinkLocator(crypto, K), new Uint8Array(locator));
  // Pinned, so a change of label or formula shows up here even if both sides changed.
  assert.equal(locator.toString('hex'), '32aaa37800cac60d823c9bbed12ac2107f71a4cac607c4b8705fb4b016c8ca4f');
  const key = Buffer.from(hkdfSync('sha256', K, new Uint8Array(0), 'umbra/v1/invitation-link/key', 32));
  const cipher = createCipheriv('chacha20-poly1305', key, NONCE, { authTagLength: 16 });
  cipher.setAAD(Buffer.concat([Buffer.of(1), locator]), { plaintextLength: PLAIN.length });
  const expected = Buffer.concat([Buffer.of(1), NONCE, cipher.update(PLAIN), cipher.final(), cipher.getAuthTag()]);
  const blob = sealInvitationBlob(crypto, K, PLAIN, NONCE);
  assert.equal(Buffer.from(blob).toString('hex'), expected.toString('hex'));
  assert.deepEqual(openInvitationBlob(crypto, K, blob), PLAIN);
  assert.equal(invitationBlobPath(crypto, K), `/v1/invitation-blob/${locator.toString('base64url')}`);
});

test('a fresh nonce each seal; a real invitation round-trips and still verifies', () => {
  const { text } = createInvitation(crypto, { nowMs: Date.now(), reusable: false, ttlSeconds: 3600, presentation: { name: 'Ada' } });
  const signed = Buffer.from(text.slice('umbra_chatintro_1_'.length), 'base64url');
  const a = sealInvitationBlob(crypto, K, signed);
  const b = sealInvitationBlob(crypto, K, signed);
  assert.notDeepEqual(a, b);
  const opened = openInvitationBlob(crypto, K, b);
  assert.equal(parseInvitation(crypto, invitationText(opened), Date.now()).presentation.name, 'Ada');
  assert.ok(a.length < 2048, `blob ${a.length} bytes`);
});

test('wrong key, truncated, altered, wrong version and oversized blobs are refused with typed errors', () => {
  const blob = sealInvitationBlob(crypto, K, PLAIN, NONCE);
  const other = new Uint8Array(32).fill(7);
  assert.equal(code(catchOf(() => openInvitationBlob(crypto, other, blob))), 'invitation-malformed');
  assert.equal(code(catchOf(() => openInvitationBlob(crypto, K, blob.subarray(0, blob.length - 1)))), 'invitation-malformed');
  assert.equal(code(catchOf(() => openInvitationBlob(crypto, K, blob.subarray(0, 10)))), 'invitation-malformed');
  assert.equal(code(catchOf(() => openInvitationBlob(crypto, K, new Uint8Array(0)))), 'invitation-malformed');
  const flipped = blob.slice();
  flipped[20]! ^= 1;
  assert.equal(code(catchOf(() => openInvitationBlob(crypto, K, flipped))), 'invitation-malformed');
  const v2 = blob.slice();
  v2[0] = 2;
  assert.equal(code(catchOf(() => openInvitationBlob(crypto, K, v2))), 'invitation-unsupported-version');
  // The same ciphertext under another locator's key (a service swapping blobs) does not open.
  const sealedForOther = sealInvitationBlob(crypto, other, PLAIN, NONCE);
  assert.equal(code(catchOf(() => openInvitationBlob(crypto, K, sealedForOther))), 'invitation-malformed');
  assert.equal(code(catchOf(() => openInvitationBlob(crypto, K, new Uint8Array(MAX_INVITATION_BLOB_BYTES + 1)))), 'invitation-malformed');
  assert.equal(code(catchOf(() => sealInvitationBlob(crypto, K, new Uint8Array(MAX_INVITATION_BLOB_BYTES)))), 'invalid-argument');
  assert.equal(code(catchOf(() => sealInvitationBlob(crypto, K.subarray(0, 16), PLAIN))), 'invalid-argument');
});

test('link text: the key only in the fragment, ≤ 100 characters, parsed back; bad links refused', () => {
  const hub = invitationLink('http://127.0.0.1:43219', K);
  assert.equal(hub, `http://127.0.0.1:43219/i#${Buffer.from(K).toString('base64url')}`);
  assert.ok(hub.length <= 100, `${hub.length}`);
  assert.equal(new URL(hub).pathname, '/i');
  const typical = invitationLink('https://directory.umbra-chat.example.org/', K);
  assert.ok(typical.length <= 100, `${typical.length}: ${typical}`);
  assert.deepEqual(parseInvitationLink(`  ${typical}\n`), { serviceUrl: 'https://directory.umbra-chat.example.org', linkKey: K });
  assert.deepEqual(parseInvitationLink(invitationLink('https://h.example/dir', K)), { serviceUrl: 'https://h.example/dir', linkKey: K });
  for (const bad of [
    'umbra_chatintro_1_AAAA',
    'ftp://h.example/i#' + Buffer.from(K).toString('base64url'),
    'https://h.example/x#' + Buffer.from(K).toString('base64url'),
    'https://h.example/i',
    'https://h.example/i#short',
    'https://h.example/i?x=1#' + Buffer.from(K).toString('base64url'),
    'https://h.example/i#' + Buffer.from(K).toString('base64url') + '=',
    'https://h.example/i#' + 'A'.repeat(600),
  ]) assert.equal(code(catchOf(() => parseInvitationLink(bad))), 'invitation-malformed', bad);
  assert.equal(code(catchOf(() => invitationLink('https://h.example/?q=1', K))), 'invalid-argument');
  assert.equal(code(catchOf(() => invitationLink('javascript:alert(1)', K))), 'invalid-argument');
});

function catchOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  assert.fail('expected a throw');
}
