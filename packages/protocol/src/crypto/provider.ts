/**
 * The crypto facade. The protocol package never imports a crypto library directly for the
 * primitives below: an engine is constructed with a provider. `nobleProvider` (this package)
 * runs everywhere; the node:crypto provider (packages/client) is the fast path on Node.
 * Both must give byte-identical results on fixed inputs (test/crypto-conformance.ts).
 *
 * Conventions: all keys are raw bytes. X25519 keys are 32 bytes. Ed25519 secret keys are the
 * 32-byte RFC 8032 seed. Functions that verify or open return false/null instead of throwing.
 */
export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export interface KemEncapsulation {
  readonly ciphertext: Uint8Array;
  readonly sharedSecret: Uint8Array;
}

export interface HpkeSealed {
  /** HPKE encapsulated key (32 bytes for DHKEM(X25519)). */
  readonly enc: Uint8Array;
  /** AEAD ciphertext including the 16-byte tag. */
  readonly ciphertext: Uint8Array;
}

export interface CryptoProvider {
  readonly name: string;

  /** Fresh bytes from the platform CSPRNG. */
  randomBytes(length: number): Uint8Array;

  sha256(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** 64 bytes: one call gives two 32-byte keys (the ratchet's KDF_CK, hint blocks). */
  hmacSha512(key: Uint8Array, data: Uint8Array): Uint8Array;
  /**
   * HMAC-SHA512 under one key of `count` messages of `messageLength` bytes laid end to end in
   * `messages`: MAC m (64 bytes) is written at out[outOffset + 64·m]. Byte-identical to
   * `hmacSha512` of each message; for the hint table's window blocks (8 per conversation per hour),
   * so it allocates no buffer or native object per message. RangeError when the lengths do not fit.
   */
  hmacSha512Batch(key: Uint8Array, messages: Uint8Array, messageLength: number, count: number, out: Uint8Array, outOffset?: number): void;
  /** RFC 5869 HKDF with SHA-256. An empty salt means HashLen zero bytes, as the RFC says. */
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** RFC 8439 ChaCha20-Poly1305: returns ciphertext ‖ 16-byte tag. key 32 B, nonce 12 B. */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Returns null when the tag does not verify (or the input is too short). */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Uint8Array | null;

  x25519Generate(): KeyPair;
  x25519PublicKey(secretKey: Uint8Array): Uint8Array;
  /**
   * X25519(secret, peer). Returns null when the result is all zero (a low-order peer key),
   * which a protocol must treat as a failed handshake.
   */
  x25519(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array | null;

  ed25519Generate(): KeyPair;
  ed25519PublicKey(secretKey: Uint8Array): Uint8Array;
  ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  /** Strict RFC 8032 verification (canonical encodings, no small-order keys); never throws. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** Birational map Edwards → Montgomery (RFC 7748 §4.1); null for an invalid point. */
  ed25519PublicToX25519(publicKey: Uint8Array): Uint8Array | null;
  /** The X25519 secret whose public key is ed25519PublicToX25519(ed25519PublicKey(secret)). */
  ed25519SecretToX25519(secretKey: Uint8Array): Uint8Array;

  /** FIPS 203 ML-KEM-768. `seed` (64 B) only for tests: fixed keys. */
  mlKem768Generate(seed?: Uint8Array): KeyPair;
  /** `randomness` (32 B) only for tests. Null when the public key is malformed. */
  mlKem768Encapsulate(publicKey: Uint8Array, randomness?: Uint8Array): KemEncapsulation | null;
  /** Implicit rejection: a wrong ciphertext gives a pseudo-random secret, as FIPS 203 requires. */
  mlKem768Decapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array | null;

  /**
   * RFC 9180 HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.
   * `ephemeralSeed` (ikm for DeriveKeyPair) only for tests and vectors.
   */
  hpkeSeal(
    recipientPublicKey: Uint8Array,
    info: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    ephemeralSeed?: Uint8Array,
  ): Promise<HpkeSealed>;
  /** Null when the ciphertext does not open under this key. */
  hpkeOpen(
    recipientSecretKey: Uint8Array,
    enc: Uint8Array,
    info: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
  ): Promise<Uint8Array | null>;
}
