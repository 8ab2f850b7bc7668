import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nobleProvider as crypto } from '../src/crypto/noble.ts';
import {
  createInvitation,
  parseInvitation,
  safetyNumber,
  INVITATION_PREFIX,
  invitationText,
} from '../src/invitation.ts';
import { UmbraError } from '../src/errors.ts';
import { fromBase64Url, toBase64Url } from '../src/bytes.ts';
import { create, toBinary, InvitationSchema, SignedInvitationSchema, decodeSignedInvitation, decodeInvitation } from '../src/wire/codec.ts';
import { LABEL_INVITATION } from '../src/labels.ts';
import { concat } from '../src/bytes.ts';
import { T0 } from './helpers.ts';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof UmbraError, `expected UmbraError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

describe('invitations', () => {
  const single = createInvitation(crypto, { nowMs: T0, reusable: false, ttlSeconds: 600, presentation: { name: 'Bob' } });
  const reusable = createInvitation(crypto, { nowMs: T0, reusable: true, ttlSeconds: 600, presentation: { name: 'Ann', avatar: Uint8Array.of(1, 2) } });

  it('round-trip: single-use carries a one-time prekey, reusable does not', () => {
    assert.ok(single.text.startsWith(INVITATION_PREFIX));
    const p = parseInvitation(crypto, single.text, T0);
    assert.deepEqual(p.identityKey, single.inbox.identity.publicKey);
    assert.deepEqual(p.oneTimePrekey, single.inbox.oneTimePrekey!.publicKey);
    assert.equal(p.presentation.name, 'Bob');
    assert.equal(p.kemPrekey.length, 1184);
    const r = parseInvitation(crypto, reusable.text, T0);
    assert.equal(r.oneTimePrekey, null);
    assert.deepEqual(r.presentation.avatar, Uint8Array.of(1, 2));
  });

  it('surrounding whitespace is tolerated (copy-paste)', () => {
    assert.ok(parseInvitation(crypto, `  ${single.text}\n`, T0));
  });

  it('expired → invitation-expired', () => {
    assert.equal(code(() => parseInvitation(crypto, single.text, T0 + 601_000)), 'invitation-expired');
  });

  it('malformed strings → invitation-malformed', () => {
    for (const s of ['', 'hello', INVITATION_PREFIX, INVITATION_PREFIX + '!!!', INVITATION_PREFIX + 'AAAA', 'umbra_chatintro_2_' + single.text.slice(18)]) {
      assert.equal(code(() => parseInvitation(crypto, s, T0)), 'invitation-malformed', s.slice(0, 30));
    }
    const huge = INVITATION_PREFIX + toBase64Url(new Uint8Array(100_000));
    assert.equal(code(() => parseInvitation(crypto, huge, T0)), 'invitation-malformed');
  });

  it('property: any corruption of the invitation is a typed error, never a crash or a success', () => {
    const bytes = fromBase64Url(single.text.slice(INVITATION_PREFIX.length))!;
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const b = bytes.slice();
        b[pos % b.length]! ^= x;
        const c = code(() => parseInvitation(crypto, INVITATION_PREFIX + toBase64Url(b), T0));
        assert.ok(['invitation-malformed', 'invitation-bad-signature', 'invitation-unsupported-version', 'invitation-expired'].includes(c), c);
      }),
      { numRuns: 500 },
    );
  });

  it('a re-signed invitation with another key fails; a tampered field fails the signature', () => {
    const signed = decodeSignedInvitation(fromBase64Url(single.text.slice(INVITATION_PREFIX.length))!)!;
    const inv = decodeInvitation(signed.invitation)!;
    const tampered = toBinary(InvitationSchema, { ...inv, expiresAt: inv.expiresAt + 1000n });
    const sig = crypto.ed25519Sign(crypto.ed25519Generate().secretKey, concat(LABEL_INVITATION, tampered));
    const text = invitationText(toBinary(SignedInvitationSchema, create(SignedInvitationSchema, { invitation: tampered, signature: sig })));
    assert.equal(code(() => parseInvitation(crypto, text, T0)), 'invitation-bad-signature');
    const text2 = invitationText(toBinary(SignedInvitationSchema, create(SignedInvitationSchema, { invitation: tampered, signature: signed.signature })));
    assert.equal(code(() => parseInvitation(crypto, text2, T0)), 'invitation-bad-signature');
  });

  it('unsupported version is reported as such', () => {
    const id = crypto.ed25519Generate();
    const inv = toBinary(InvitationSchema, create(InvitationSchema, { version: 2 }));
    const text = invitationText(toBinary(SignedInvitationSchema, create(SignedInvitationSchema, { invitation: inv, signature: crypto.ed25519Sign(id.secretKey, inv) })));
    assert.equal(code(() => parseInvitation(crypto, text, T0)), 'invitation-unsupported-version');
  });

  it('oversized presentation is refused at creation', () => {
    assert.equal(code(() => createInvitation(crypto, { nowMs: T0, reusable: true, ttlSeconds: 1, presentation: { name: 'x'.repeat(500) } })), 'invalid-argument');
  });

  it('safety number: 12 groups of 5 digits, same from both sides, differs per pair', () => {
    const a = crypto.ed25519Generate().publicKey;
    const b = crypto.ed25519Generate().publicKey;
    const c = crypto.ed25519Generate().publicKey;
    const n = safetyNumber(crypto, a, b);
    assert.match(n, /^(\d{5} ){11}\d{5}$/);
    assert.equal(safetyNumber(crypto, b, a), n);
    assert.notEqual(safetyNumber(crypto, a, c), n);
  });
});
