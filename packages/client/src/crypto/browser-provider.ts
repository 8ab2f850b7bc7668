/**
 * The browser CryptoProvider: noble for everything the synchronous CryptoProvider interface
 * needs, and WebCrypto's native X25519 inside HPKE, the one operation the interface already
 * awaits. In Chromium 156 a WebCrypto X25519 agreement is ~10× faster than noble's
 * (packages/web/bench/crypto-chromium.ts, figures in docs/WEB.md); Ed25519, SHA-256 and HKDF are
 * faster natively too, but they are synchronous calls in the provider interface, so they stay
 * on noble. ChaCha20-Poly1305 and ML-KEM-768 have no WebCrypto algorithm.
 *
 * HPKE is the protocol's one RFC 9180 construction (`hpkeSealBase` / `hpkeOpenBase`): WebCrypto
 * computes only the DH result and the public keys; the key schedule and the AEAD run over the
 * same code as every other provider, so results are byte-identical (the conformance suite runs
 * this provider in Chromium). Where WebCrypto has no X25519 (older browsers), or for a fixed
 * ephemeral seed (vectors), HPKE runs entirely on noble.
 */
import { hpkeOpenBase, hpkeSealBase, isAllZero, nobleProvider, type CryptoProvider, type HpkePrimitives, type HpkeSealed, type KeyPair } from '@umbra/protocol';

/** RFC 8410 PKCS#8 prefix of a raw 32-byte X25519 private key. */
const X25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const X25519 = { name: 'X25519' } as const;

function fromB64u(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/**
 * HPKE's primitives with one X25519 agreement already done natively: `x25519Generate` hands out
 * the ephemeral key WebCrypto made (its secret stays inside WebCrypto, so the placeholder is never
 * read), `x25519` the agreed secret, `x25519PublicKey` the recipient's public key.
 */
function withNativeAgreement(ephemeralPublicKey: Uint8Array, shared: Uint8Array, recipientPublicKey: Uint8Array): HpkePrimitives {
  const ephemeral: KeyPair = { publicKey: ephemeralPublicKey, secretKey: new Uint8Array(32) };
  return {
    hmacSha256: nobleProvider.hmacSha256,
    aeadSeal: nobleProvider.aeadSeal,
    aeadOpen: nobleProvider.aeadOpen,
    x25519Generate: () => ephemeral,
    x25519: () => shared,
    x25519PublicKey: () => recipientPublicKey,
  };
}

/** Null when the agreement is refused (WebCrypto rejects an all-zero result, i.e. a low-order key). */
async function agree(subtle: SubtleCrypto, privateKey: CryptoKey, peerPublicKey: Uint8Array): Promise<Uint8Array | null> {
  try {
    const peer = await subtle.importKey('raw', new Uint8Array(peerPublicKey), X25519, false, []);
    const bits = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: peer }, privateKey, 256));
    return isAllZero(bits) ? null : bits;
  } catch {
    return null;
  }
}

export interface BrowserProviderOptions {
  /** Default: globalThis.crypto.subtle. */
  readonly subtle?: SubtleCrypto;
}

export function createBrowserProvider(options: BrowserProviderOptions = {}): CryptoProvider {
  const subtle = options.subtle ?? globalThis.crypto?.subtle;
  let nativeX25519: Promise<boolean> | null = null;
  const hasNativeX25519 = (): Promise<boolean> => {
    nativeX25519 ??= subtle === undefined
      ? Promise.resolve(false)
      : subtle.generateKey(X25519, false, ['deriveBits']).then(
          () => true,
          () => false,
        );
    return nativeX25519;
  };

  return {
    ...nobleProvider,
    name: 'browser',

    async hpkeSeal(recipientPublicKey, info, aad, plaintext, ephemeralSeed?: Uint8Array): Promise<HpkeSealed> {
      if (ephemeralSeed !== undefined || !(await hasNativeX25519())) {
        return hpkeSealBase(nobleProvider, recipientPublicKey, info, aad, plaintext, ephemeralSeed);
      }
      if (recipientPublicKey.length !== 32) throw new RangeError('HPKE recipient public key must be 32 bytes');
      const ephemeral = (await subtle!.generateKey(X25519, true, ['deriveBits'])) as CryptoKeyPair;
      const enc = new Uint8Array(await subtle!.exportKey('raw', ephemeral.publicKey));
      const shared = await agree(subtle!, ephemeral.privateKey, recipientPublicKey);
      if (shared === null) throw new RangeError('HPKE recipient public key gives an all-zero shared secret');
      return hpkeSealBase(withNativeAgreement(enc, shared, recipientPublicKey), recipientPublicKey, info, aad, plaintext);
    },

    async hpkeOpen(recipientSecretKey, enc, info, aad, ciphertext) {
      if (!(await hasNativeX25519())) return hpkeOpenBase(nobleProvider, recipientSecretKey, enc, info, aad, ciphertext);
      if (recipientSecretKey.length !== 32 || enc.length !== 32 || ciphertext.length < 16) return null;
      try {
        const pkcs8 = new Uint8Array(48);
        pkcs8.set(X25519_PKCS8_PREFIX);
        pkcs8.set(recipientSecretKey, 16);
        const privateKey = await subtle!.importKey('pkcs8', pkcs8, X25519, true, ['deriveBits']);
        pkcs8.fill(0);
        const jwk = await subtle!.exportKey('jwk', privateKey);
        if (typeof jwk.x !== 'string') return null;
        const shared = await agree(subtle!, privateKey, enc);
        if (shared === null) return null;
        return hpkeOpenBase(withNativeAgreement(enc, shared, fromB64u(jwk.x)), recipientSecretKey, enc, info, aad, ciphertext);
      } catch {
        return null;
      }
    },
  };
}

export const browserProvider: CryptoProvider = createBrowserProvider();
