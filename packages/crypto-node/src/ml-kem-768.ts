/**
 * ML-KEM-768 (FIPS 203) on liboqs compiled to WebAssembly (@oqs/liboqs-js, the Open Quantum Safe
 * project's build; the .wasm ships inside the npm package, nothing is downloaded at install).
 * Node 20's OpenSSL 3.0 has no ML-KEM; noble's pure-JS one costs ~1–2 ms per operation here,
 * this one ~0.1–0.2 ms (bench/crypto-primitives.ts prints both).
 *
 * Only the randomised operations live here: liboqs draws its randomness from node:crypto
 * (Emscripten's getentropy → randomFillSync). Seeded key generation and encapsulation (tests and
 * vectors only) stay on noble, which liboqs cannot do through this build's exports. The results
 * are interchangeable with noble's (packages/crypto-node/test/ml-kem-768.test.ts checks keys,
 * ciphertexts and the implicit-rejection secret across the two).
 *
 * The wrapper classes of the package copy secrets into the WASM heap and free them without
 * wiping; this module calls the liboqs exports directly and zeroes every buffer it used before
 * freeing it.
 */

interface LiboqsModule {
  readonly HEAPU8: Uint8Array;
  _malloc(size: number): number;
  _free(ptr: number): void;
  _OQS_init(): void;
  _OQS_KEM_new(namePtr: number): number;
  _OQS_KEM_keypair(kem: number, publicKey: number, secretKey: number): number;
  _OQS_KEM_encaps(kem: number, ciphertext: number, sharedSecret: number, publicKey: number): number;
  _OQS_KEM_decaps(kem: number, sharedSecret: number, ciphertext: number, secretKey: number): number;
  lengthBytesUTF8(s: string): number;
  stringToUTF8(s: string, ptr: number, max: number): void;
}

const PUBLIC_KEY = 1184;
const SECRET_KEY = 2400;
const CIPHERTEXT = 1088;
const SHARED_SECRET = 32;

// The package's exports map lists only its JS wrappers; the Emscripten module they load sits in
// dist/ beside them (same package, same version).
const moduleUrl = new URL('../dist/ml-kem-768.min.js', import.meta.resolve('@oqs/liboqs-js'));
const factory = ((await import(moduleUrl.href)) as { default: () => Promise<LiboqsModule> }).default;
const wasm = await factory();
wasm._OQS_init();

const kem: number = (() => {
  const name = 'ML-KEM-768';
  const length = wasm.lengthBytesUTF8(name) + 1;
  const ptr = wasm._malloc(length);
  wasm.stringToUTF8(name, ptr, length);
  const handle = wasm._OQS_KEM_new(ptr);
  wasm._free(ptr);
  if (handle === 0) throw new Error('liboqs: ML-KEM-768 is not available in this build');
  return handle;
})();

/** One scratch region for every call (JS is single-threaded; calls never overlap). */
const SCRATCH_BYTES = PUBLIC_KEY + SECRET_KEY + CIPHERTEXT + SHARED_SECRET;
const scratch = wasm._malloc(SCRATCH_BYTES);
if (scratch === 0) throw new Error('liboqs: out of WASM memory');
const PK = scratch;
const SK = PK + PUBLIC_KEY;
const CT = SK + SECRET_KEY;
const SS = CT + CIPHERTEXT;

/** HEAPU8 is replaced when the WASM memory grows: read it afresh on each use. */
function heap(): Uint8Array {
  return wasm.HEAPU8;
}

function take(ptr: number, length: number): Uint8Array {
  return heap().slice(ptr, ptr + length);
}

function wipe(): void {
  heap().fill(0, scratch, scratch + SCRATCH_BYTES);
}

export function mlKem768GenerateWasm(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  try {
    if (wasm._OQS_KEM_keypair(kem, PK, SK) !== 0) throw new Error('liboqs: ML-KEM-768 key generation failed');
    return { publicKey: take(PK, PUBLIC_KEY), secretKey: take(SK, SECRET_KEY) };
  } finally {
    wipe();
  }
}

/** Null when the key has the wrong length or fails the FIPS 203 §7.2 modulus check. */
export function mlKem768EncapsulateWasm(publicKey: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array } | null {
  if (publicKey.length !== PUBLIC_KEY) return null;
  try {
    heap().set(publicKey, PK);
    if (wasm._OQS_KEM_encaps(kem, CT, SS, PK) !== 0) return null;
    return { ciphertext: take(CT, CIPHERTEXT), sharedSecret: take(SS, SHARED_SECRET) };
  } finally {
    wipe();
  }
}

/** Null on wrong lengths or a secret key that fails the FIPS 203 §7.3 hash check; else implicit rejection. */
export function mlKem768DecapsulateWasm(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array | null {
  if (ciphertext.length !== CIPHERTEXT || secretKey.length !== SECRET_KEY) return null;
  try {
    const h = heap();
    h.set(ciphertext, CT);
    h.set(secretKey, SK);
    if (wasm._OQS_KEM_decaps(kem, SS, CT, SK) !== 0) return null;
    return take(SS, SHARED_SECRET);
  } finally {
    wipe();
  }
}
