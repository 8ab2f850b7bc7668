/**
 * Browser side of bench/crypto-chromium.ts: each primitive the protocol uses, noble (synchronous,
 * what the CryptoProvider interface needs) beside WebCrypto (asynchronous, awaited one call at a
 * time as a provider would), on the same inputs. Results go to window.__umbraResults.
 */
import { nobleProvider } from '@umbra/protocol';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { gcm } from '@noble/ciphers/aes.js';
import { browserProvider } from '../../client/src/crypto/browser-provider.ts';

interface Row {
  readonly primitive: string;
  readonly impl: 'noble' | 'webcrypto';
  readonly usPerOp: number;
  readonly ops: number;
}

const subtle = globalThis.crypto.subtle;
const rows: Row[] = [];
const BUDGET_MS = 400;

async function measure(primitive: string, impl: Row['impl'], op: () => unknown): Promise<void> {
  for (let i = 0; i < 20; i++) await op(); // warm-up (JIT, key caches)
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < BUDGET_MS) {
    for (let i = 0; i < 10; i++) await op();
    ops += 10;
    elapsed = performance.now() - start;
  }
  rows.push({ primitive, impl, usPerOp: (elapsed * 1000) / ops, ops });
}

function bytes(n: number, fill = 7): Uint8Array<ArrayBuffer> {
  return new Uint8Array(n).fill(fill);
}

async function run(): Promise<Row[]> {
  const p = nobleProvider;
  const msg1k = bytes(1024);
  const msg64k = bytes(64 * 1024);

  // X25519: one DH with a fresh peer key each time, as a ratchet step or HPKE does (import included).
  const a = p.x25519Generate();
  const b = p.x25519Generate();
  await measure('X25519 DH', 'noble', () => p.x25519(a.secretKey, b.publicKey));
  const wcA = (await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as CryptoKeyPair;
  const wcBRaw = new Uint8Array(await subtle.exportKey('raw', ((await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as CryptoKeyPair).publicKey));
  await measure('X25519 DH', 'webcrypto', async () => {
    const peer = await subtle.importKey('raw', wcBRaw, { name: 'X25519' }, false, []);
    return subtle.deriveBits({ name: 'X25519', public: peer }, wcA.privateKey, 256);
  });
  await measure('X25519 keygen', 'noble', () => p.x25519Generate());
  await measure('X25519 keygen', 'webcrypto', async () => {
    const kp = (await subtle.generateKey({ name: 'X25519' }, true, ['deriveBits'])) as CryptoKeyPair;
    return subtle.exportKey('raw', kp.publicKey);
  });

  // Ed25519 sign and verify of 1 KiB.
  const ed = p.ed25519Generate();
  const sig = p.ed25519Sign(ed.secretKey, msg1k);
  await measure('Ed25519 sign 1 KiB', 'noble', () => p.ed25519Sign(ed.secretKey, msg1k));
  await measure('Ed25519 verify 1 KiB', 'noble', () => p.ed25519Verify(ed.publicKey, msg1k, sig));
  const wcEd = (await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const wcEdPub = new Uint8Array(await subtle.exportKey('raw', wcEd.publicKey));
  const wcSig = new Uint8Array(await subtle.sign({ name: 'Ed25519' }, wcEd.privateKey, msg1k));
  await measure('Ed25519 sign 1 KiB', 'webcrypto', () => subtle.sign({ name: 'Ed25519' }, wcEd.privateKey, msg1k));
  await measure('Ed25519 verify 1 KiB', 'webcrypto', async () => {
    const key = await subtle.importKey('raw', wcEdPub, { name: 'Ed25519' }, false, ['verify']);
    return subtle.verify({ name: 'Ed25519' }, key, wcSig, msg1k);
  });

  // SHA-256.
  await measure('SHA-256 1 KiB', 'noble', () => p.sha256(msg1k));
  await measure('SHA-256 1 KiB', 'webcrypto', () => subtle.digest('SHA-256', msg1k));
  await measure('SHA-256 64 KiB', 'noble', () => p.sha256(msg64k));
  await measure('SHA-256 64 KiB', 'webcrypto', () => subtle.digest('SHA-256', msg64k));

  // HKDF-SHA-256, 32-byte ikm/salt, 64 bytes out (the ratchet's root KDF shape).
  const ikm = bytes(32, 1);
  const salt = bytes(32, 2);
  const info = bytes(16, 3);
  await measure('HKDF-SHA-256 64 B', 'noble', () => p.hkdfSha256(ikm, salt, info, 64));
  await measure('HKDF-SHA-256 64 B', 'webcrypto', async () => {
    const key = await subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
    return subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, key, 512);
  });

  // HMAC-SHA-256 over 64 bytes (chain-key step).
  const macKey = bytes(32, 4);
  const macData = bytes(64, 5);
  await measure('HMAC-SHA-256 64 B', 'noble', () => p.hmacSha256(macKey, macData));
  const wcMac = await subtle.importKey('raw', macKey, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  await measure('HMAC-SHA-256 64 B', 'webcrypto', () => subtle.sign('HMAC', wcMac, macData));

  // AEAD on 1 KiB: the protocol's ChaCha20-Poly1305 (noble; WebCrypto has none) and AES-256-GCM
  // (both), to show what a native AEAD would give.
  const key = bytes(32, 6);
  const nonce = bytes(12, 8);
  const aad = bytes(16, 9);
  await measure('ChaCha20-Poly1305 seal 1 KiB', 'noble', () => chacha20poly1305(key, nonce, aad).encrypt(msg1k));
  await measure('AES-256-GCM seal 1 KiB', 'noble', () => gcm(key, nonce, aad).encrypt(msg1k));
  const wcAes = await subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt']);
  await measure('AES-256-GCM seal 1 KiB', 'webcrypto', () => subtle.encrypt({ name: 'AES-GCM', iv: nonce, additionalData: aad }, wcAes, msg1k));

  // ML-KEM-768 (noble only; no WebCrypto algorithm).
  const kem = p.mlKem768Generate();
  const enc = p.mlKem768Encapsulate(kem.publicKey)!;
  await measure('ML-KEM-768 encapsulate', 'noble', () => p.mlKem768Encapsulate(kem.publicKey));
  await measure('ML-KEM-768 decapsulate', 'noble', () => p.mlKem768Decapsulate(enc.ciphertext, kem.secretKey));

  // HPKE of 256 B (session setup), the provider's whole operation: noble vs the browser provider
  // (WebCrypto X25519, the rest on noble).
  const hpkeRecipient = p.x25519Generate();
  const pt = bytes(256, 10);
  await measure('HPKE seal 256 B', 'noble', () => p.hpkeSeal(hpkeRecipient.publicKey, info, aad, pt));
  await measure('HPKE seal 256 B', 'webcrypto', () => browserProvider.hpkeSeal(hpkeRecipient.publicKey, info, aad, pt));
  const sealed = await p.hpkeSeal(hpkeRecipient.publicKey, info, aad, pt);
  await measure('HPKE open 256 B', 'noble', () => p.hpkeOpen(hpkeRecipient.secretKey, sealed.enc, info, aad, sealed.ciphertext));
  await measure('HPKE open 256 B', 'webcrypto', () => browserProvider.hpkeOpen(hpkeRecipient.secretKey, sealed.enc, info, aad, sealed.ciphertext));
  return rows;
}

const target = globalThis as { __umbraResults?: unknown };
run().then(
  (r) => {
    target.__umbraResults = r;
  },
  (e: unknown) => {
    target.__umbraResults = { fatal: String((e as Error)?.stack ?? e) };
  },
);
