/**
 * Chromium side of crypto-chromium.test.ts: the protocol's crypto conformance suite (RFC 7748,
 * 8032, 5869, 4231, 8439, 9180 A.2 vectors, FIPS 180-4, the ML-KEM fixture, property tests)
 * unchanged, on the noble provider and on the browser provider (WebCrypto X25519 inside HPKE),
 * and the cross-provider checks between the two.
 */
import { nobleProvider } from '@umbra/protocol';
import { cryptoConformanceSuite, crossProviderSuite } from '../../../protocol/test/crypto-conformance.ts';
import { browserProvider } from '../../../client/src/crypto/browser-provider.ts';
import { describe, it, publishResults } from '../harness/node-test-shim.ts';
import assert from '../harness/assert-shim.ts';

describe('environment', () => {
  it('runs in Chromium with WebCrypto X25519 (the browser provider takes its native path)', async () => {
    assert.match(navigator.userAgent, /Chrom/);
    const kp = await crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']);
    assert.ok('privateKey' in kp);
  });
});

cryptoConformanceSuite(nobleProvider);
cryptoConformanceSuite(browserProvider);
crossProviderSuite(nobleProvider, browserProvider);
publishResults();
