/** transparency.createEquivWith: an Equiv signed through signers is the same bytes as from the secrets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nobleProvider, transparency as t } from '../src/index.ts';

test('createEquivWith(signers) = createEquiv(secrets), and verifies; a wrong signer does not', () => {
  const a = nobleProvider.randomBytes(32);
  const b = nobleProvider.randomBytes(32);
  const signer = (s: Uint8Array): t.Ed25519Signer => ({ publicKey: nobleProvider.ed25519PublicKey(s), sign: (m) => nobleProvider.ed25519Sign(s, m) });
  const viaSigners = t.createEquivWith(signer(a), signer(b), 1_700_000_000_000);
  assert.deepEqual(viaSigners, t.createEquiv(a, b, 1_700_000_000_000));
  assert.deepEqual(t.verifyEquiv(viaSigners)?.a, nobleProvider.ed25519PublicKey(a));
  // A signer claiming a's key but signing with another secret yields an Equiv nobody accepts.
  const liar: t.Ed25519Signer = { publicKey: nobleProvider.ed25519PublicKey(a), sign: (m) => nobleProvider.ed25519Sign(nobleProvider.randomBytes(32), m) };
  assert.equal(t.verifyEquiv(t.createEquivWith(liar, signer(b), 1_700_000_000_000)), null);
});
