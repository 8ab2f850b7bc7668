/**
 * Conformance tests for any CryptoProvider, from published vectors:
 *   RFC 7748 (X25519), RFC 8032 §7.1 (Ed25519), RFC 5869 (HKDF), RFC 4231 (HMAC),
 *   FIPS 180-4 examples (SHA-256), RFC 8439 §2.8.2 (ChaCha20-Poly1305), RFC 9180 A.2 (HPKE).
 * ML-KEM-768 has no short published vector; its fixture is marked below.
 *
 * `cryptoConformanceSuite(p)` checks one provider; `crossProviderSuite(a, b)` checks that two
 * providers give byte-identical results and accept each other's keys.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { CryptoProvider } from '../src/crypto/provider.ts';
import { concat, fromHex, toHex, utf8 } from '../src/bytes.ts';

function hex(text: string): Uint8Array {
  const bytes = fromHex(text.replace(/\s+/g, ''));
  if (bytes === null) throw new Error(`bad hex in a test vector: ${text.slice(0, 16)}…`);
  return bytes;
}

function range(start: number, end: number): Uint8Array {
  return Uint8Array.from({ length: end - start }, (_, i) => start + i);
}

function flip(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const out = bytes.slice();
  out[index] = out[index]! ^ mask;
  return out;
}

// ---------------------------------------------------------------------------------------------
// vectors

/** RFC 7748 §5.2 (scalar, u, output) and the iterated test after 1 and 1,000 iterations. */
const X25519_SCALARMULT = [
  {
    scalar: 'a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4',
    u: 'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
    out: 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
  },
  {
    scalar: '4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d',
    u: 'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493',
    out: '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
  },
];
const X25519_ITERATED = {
  1: '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079',
  1000: '684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51',
};

/** RFC 7748 §6.1. */
const X25519_DH = {
  alicePrivate: '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
  alicePublic: '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  bobPrivate: '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb',
  bobPublic: 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f',
  shared: '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742',
};

/**
 * X25519 points of order 1, 2, 4 or 8 (and non-canonical encodings of them): the DH result is
 * all zero, so x25519() must return null.
 */
const X25519_LOW_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
];

const RFC8032_TEST1024_MESSAGE =
  '08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1' +
  'e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d' +
  '658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a' +
  '7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e' +
  '06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10' +
  '3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1' +
  '85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d' +
  '502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270' +
  '88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b' +
  'eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba' +
  'b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b' +
  'e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7' +
  '51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d' +
  'cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df' +
  'f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7' +
  '984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4' +
  '88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09' +
  '43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f' +
  'b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161' +
  '0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d' +
  'b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca' +
  'c60c905c15fc910840b94c00a0b9d0';

/** RFC 8032 §7.1: TEST 1, 2, 3, 1024 and SHA(abc). */
const ED25519_VECTORS = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST 1024',
    secret: 'f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5',
    public: '278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e',
    message: RFC8032_TEST1024_MESSAGE,
    signature:
      '0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03',
  },
  {
    name: 'TEST SHA(abc)',
    secret: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    public: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    // SHA-512("abc")
    message:
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    signature:
      'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];

/** Ed25519 group order L, little-endian. */
const ED25519_L = 'edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010';

/** The 8 Ed25519 points of small order (canonical encodings): strict verification rejects them as keys. */
const ED25519_SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
];

/** Add L to a little-endian 32-byte scalar (result still fits: S < L < 2^253). */
function addL(s: Uint8Array): Uint8Array {
  const l = hex(ED25519_L);
  const out = new Uint8Array(32);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const v = s[i]! + l[i]! + carry;
    out[i] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}

/** RFC 5869 Appendix A.1–A.3 (SHA-256 cases). */
const HKDF_VECTORS = [
  {
    name: 'A.1 basic',
    ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
    salt: '000102030405060708090a0b0c',
    info: 'f0f1f2f3f4f5f6f7f8f9',
    length: 42,
    okm: '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
  },
  {
    name: 'A.2 longer inputs',
    ikm: toHex(range(0x00, 0x50)),
    salt: toHex(range(0x60, 0xb0)),
    info: toHex(range(0xb0, 0x100)),
    length: 82,
    okm:
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09' +
      'da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87',
  },
  {
    name: 'A.3 empty salt and info',
    ikm: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
    salt: '',
    info: '',
    length: 42,
    okm: '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
  },
];

/** RFC 4231 §4.2, §4.3, §4.7 (HMAC-SHA-256 and HMAC-SHA-512). */
const HMAC_VECTORS = [
  {
    name: 'test case 1',
    key: '0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b',
    data: toHex(utf8('Hi There')),
    mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    mac512:
      '87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854',
  },
  {
    name: 'test case 2',
    key: toHex(utf8('Jefe')),
    data: toHex(utf8('what do ya want for nothing?')),
    mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    mac512:
      '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737',
  },
  {
    name: 'test case 6 (key longer than the block)',
    key: 'aa'.repeat(131),
    data: toHex(utf8('Test Using Larger Than Block-Size Key - Hash Key First')),
    mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
    mac512:
      '80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598',
  },
];

/** RFC 8439 §2.8.2. */
const AEAD_VECTOR = {
  key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
  nonce: '070000004041424344454647',
  aad: '50515253c0c1c2c3c4c5c6c7',
  plaintext:
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  ciphertext:
    'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b' +
    '1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc' +
    '3ff4def08e4b7a9de576d26586cec64b6116',
  tag: '1ae10b594f09e26a7e902ecbd0600691',
};

/** RFC 9180 A.2: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305; A.2.1 base mode, sequence 0. */
const HPKE_VECTOR = {
  info: '4f6465206f6e2061204772656369616e2055726e', // "Ode on a Grecian Urn"
  ikmE: '909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b',
  skRm: '8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb',
  pkRm: '4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a',
  enc: '1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a',
  aad: '436f756e742d30', // "Count-0"
  pt: '4265617574792069732074727574682c20747275746820626561757479', // "Beauty is truth, truth beauty"
  ct: '1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28',
};

/**
 * ML-KEM-768 known-answer fixture. NOT a published vector: computed once with
 * @noble/post-quantum 0.7.1 (`ml_kem768.keygen(seed)`, `encapsulate(pk, m)`) and cross-checked
 * against OpenSSL 4.0 (pyca/cryptography 48: `MLKEM768PrivateKey.from_seed_bytes(seed)` gives
 * the same public key, and its `decapsulate` gives the same shared secret and the same
 * implicit-rejection secret). seed = 00 01 … 3f, m = 80 81 … 9f.
 */
const MLKEM_FIXTURE = {
  seed: range(0x00, 0x40),
  m: range(0x80, 0xa0),
  publicKeySha256: '0b7934c83125c788995e2ba6bd761e33046b3e40571be53e023309a29f398cc9',
  secretKeySha256: 'dac268bde6a8dd238e9887117d6b664e7a7a9350ad6b7c08a948e504809572a5',
  ciphertextSha256: '1f16e217ad23771f7f72522c602dcf10cd1e2eea2648e72d29c1255a3949c33e',
  sharedSecret: 'ef91db44b6cd5b2c50f483481a3d6e2a08cc149764fcb8dc568851332da45ed9',
  /** decapsulate(ciphertext with bit 0 of byte 0 flipped): the FIPS 203 implicit-rejection secret. */
  rejectionSecret: '016b585c8abc901fa45387c496d0ed74332aa06501ace2bb65ab9f8458a35bfc',
};

/**
 * Ed25519 → X25519 of the RFC 8032 TEST 1 public key, u = (1 + y) / (1 - y) mod p, and the
 * converted secret clamp(SHA-512(seed)[0..32]). Computed independently with Python integer
 * arithmetic and hashlib; X25519(secret) by OpenSSL gives the same u.
 */
const ED_TO_X_TEST1 = {
  u: 'd85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e',
  secret: '307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f',
};

// ---------------------------------------------------------------------------------------------

export function cryptoConformanceSuite(provider: CryptoProvider): void {
  const p = provider;

  describe(`crypto conformance: ${p.name}`, () => {
    describe('randomBytes', () => {
      it('returns the requested length, including 0 and more than 65,536 bytes', () => {
        for (const n of [0, 1, 32, 100_000]) {
          const r = p.randomBytes(n);
          assert.ok(r instanceof Uint8Array);
          assert.equal(r.length, n);
        }
      });
      it('is not constant across calls', () => {
        const seen = new Set<string>();
        for (let i = 0; i < 16; i++) seen.add(toHex(p.randomBytes(32)));
        assert.equal(seen.size, 16);
        assert.notEqual(toHex(p.randomBytes(32)), '00'.repeat(32));
      });
    });

    describe('SHA-256', () => {
      it('FIPS 180-4 examples: "abc", "", the 448-bit message', () => {
        assert.equal(toHex(p.sha256(utf8('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
        assert.equal(toHex(p.sha256(new Uint8Array(0))), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
        assert.equal(
          toHex(p.sha256(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))),
          '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
        );
      });
    });

    describe('HMAC-SHA-256 and HMAC-SHA-512 (RFC 4231)', () => {
      for (const v of HMAC_VECTORS) {
        it(v.name, () => {
          assert.equal(toHex(p.hmacSha256(hex(v.key), hex(v.data))), v.mac);
          assert.equal(toHex(p.hmacSha512(hex(v.key), hex(v.data))), v.mac512);
          // The batch form (hint blocks): the same MAC twice, after 3 bytes of an unused prefix.
          const data = hex(v.data);
          const out = new Uint8Array(3 + 128);
          p.hmacSha512Batch(hex(v.key), concat(data, data), data.length, 2, out, 3);
          assert.equal(toHex(out.subarray(3)), v.mac512.repeat(2));
        });
      }
    });

    describe('HKDF-SHA-256 (RFC 5869)', () => {
      for (const v of HKDF_VECTORS) {
        it(v.name, () => {
          assert.equal(toHex(p.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), v.length)), v.okm);
        });
      }
      it('a shorter output is a prefix of a longer one; length 0 gives empty; > 255·32 throws', () => {
        const v = HKDF_VECTORS[0]!;
        assert.equal(toHex(p.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), 16)), v.okm.slice(0, 32));
        assert.equal(p.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), 0).length, 0);
        assert.equal(p.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), 8160).length, 8160);
        assert.throws(() => p.hkdfSha256(hex(v.ikm), hex(v.salt), hex(v.info), 8161), RangeError);
      });
      it('accepts info longer than 1,024 bytes', () => {
        const okm = p.hkdfSha256(utf8('ikm'), utf8('salt'), new Uint8Array(2000).fill(7), 32);
        assert.equal(okm.length, 32);
      });
    });

    describe('ChaCha20-Poly1305 (RFC 8439)', () => {
      const v = AEAD_VECTOR;
      const expected = v.ciphertext + v.tag;
      it('§2.8.2 seal gives the published ciphertext and tag', () => {
        assert.equal(toHex(p.aeadSeal(hex(v.key), hex(v.nonce), utf8(v.plaintext), hex(v.aad))), expected);
      });
      it('§2.8.2 open gives the plaintext back', () => {
        const pt = p.aeadOpen(hex(v.key), hex(v.nonce), hex(expected), hex(v.aad));
        assert.ok(pt !== null);
        assert.equal(toHex(pt), toHex(utf8(v.plaintext)));
      });
      it('any tampering gives null', () => {
        const ct = hex(expected);
        assert.equal(p.aeadOpen(hex(v.key), hex(v.nonce), flip(ct, 0), hex(v.aad)), null, 'ciphertext');
        assert.equal(p.aeadOpen(hex(v.key), hex(v.nonce), flip(ct, ct.length - 1), hex(v.aad)), null, 'tag');
        assert.equal(p.aeadOpen(hex(v.key), hex(v.nonce), ct, flip(hex(v.aad), 0)), null, 'aad');
        assert.equal(p.aeadOpen(hex(v.key), flip(hex(v.nonce), 0), ct, hex(v.aad)), null, 'nonce');
        assert.equal(p.aeadOpen(flip(hex(v.key), 0), hex(v.nonce), ct, hex(v.aad)), null, 'key');
        assert.equal(p.aeadOpen(hex(v.key), hex(v.nonce), ct.subarray(0, ct.length - 1), hex(v.aad)), null, 'truncated');
      });
      it('short or malformed inputs to open give null, to seal throw', () => {
        const key = hex(v.key);
        const nonce = hex(v.nonce);
        assert.equal(p.aeadOpen(key, nonce, new Uint8Array(15), new Uint8Array(0)), null);
        assert.equal(p.aeadOpen(key.subarray(1), nonce, new Uint8Array(32), new Uint8Array(0)), null);
        assert.equal(p.aeadOpen(key, nonce.subarray(1), new Uint8Array(32), new Uint8Array(0)), null);
        assert.throws(() => p.aeadSeal(key.subarray(1), nonce, new Uint8Array(1), new Uint8Array(0)), RangeError);
        assert.throws(() => p.aeadSeal(key, new Uint8Array(24), new Uint8Array(1), new Uint8Array(0)), RangeError);
      });
      it('empty plaintext round-trips (tag only)', () => {
        const sealed = p.aeadSeal(hex(v.key), hex(v.nonce), new Uint8Array(0), hex(v.aad));
        assert.equal(sealed.length, 16);
        assert.equal(p.aeadOpen(hex(v.key), hex(v.nonce), sealed, hex(v.aad))?.length, 0);
      });
    });

    describe('X25519 (RFC 7748)', () => {
      X25519_SCALARMULT.forEach((v, i) => {
        it(`§5.2 scalar multiplication vector ${i + 1}`, () => {
          assert.equal(toHex(p.x25519(hex(v.scalar), hex(v.u)) ?? new Uint8Array(0)), v.out);
        });
      });
      it('§5.2 iterated: after 1 and 1,000 iterations', () => {
        let k: Uint8Array = hex('0900000000000000000000000000000000000000000000000000000000000000');
        let u: Uint8Array = k.slice();
        for (let i = 1; i <= 1000; i++) {
          const out = p.x25519(k, u);
          assert.ok(out !== null);
          u = k;
          k = out;
          if (i === 1) assert.equal(toHex(k), X25519_ITERATED[1]);
        }
        assert.equal(toHex(k), X25519_ITERATED[1000]);
      });
      it('§6.1 public keys and the shared secret, both ways', () => {
        const v = X25519_DH;
        assert.equal(toHex(p.x25519PublicKey(hex(v.alicePrivate))), v.alicePublic);
        assert.equal(toHex(p.x25519PublicKey(hex(v.bobPrivate))), v.bobPublic);
        assert.equal(toHex(p.x25519(hex(v.alicePrivate), hex(v.bobPublic)) ?? new Uint8Array(0)), v.shared);
        assert.equal(toHex(p.x25519(hex(v.bobPrivate), hex(v.alicePublic)) ?? new Uint8Array(0)), v.shared);
      });
      it('low-order peer keys give null', () => {
        const sk = hex(X25519_DH.alicePrivate);
        for (const u of X25519_LOW_ORDER) assert.equal(p.x25519(sk, hex(u)), null, u);
      });
      it('wrong lengths give null; x25519PublicKey throws', () => {
        const sk = hex(X25519_DH.alicePrivate);
        const pk = hex(X25519_DH.bobPublic);
        assert.equal(p.x25519(sk.subarray(1), pk), null);
        assert.equal(p.x25519(sk, pk.subarray(1)), null);
        assert.equal(p.x25519(sk, concat(pk, new Uint8Array(1))), null);
        assert.throws(() => p.x25519PublicKey(sk.subarray(1)), RangeError);
      });
      it('generated key pairs agree', () => {
        const a = p.x25519Generate();
        const b = p.x25519Generate();
        assert.equal(a.secretKey.length, 32);
        assert.equal(a.publicKey.length, 32);
        assert.notEqual(toHex(a.secretKey), toHex(b.secretKey));
        assert.equal(toHex(p.x25519PublicKey(a.secretKey)), toHex(a.publicKey));
        const ab = p.x25519(a.secretKey, b.publicKey);
        assert.ok(ab !== null);
        assert.equal(toHex(ab), toHex(p.x25519(b.secretKey, a.publicKey) ?? new Uint8Array(0)));
      });
      it('an array overwritten in place is read afresh (no stale cached key)', () => {
        const sk = hex(X25519_DH.alicePrivate);
        assert.equal(toHex(p.x25519PublicKey(sk)), X25519_DH.alicePublic);
        sk.set(hex(X25519_DH.bobPrivate));
        assert.equal(toHex(p.x25519PublicKey(sk)), X25519_DH.bobPublic);
        const peer = hex(X25519_DH.bobPublic);
        assert.equal(toHex(p.x25519(hex(X25519_DH.alicePrivate), peer) ?? new Uint8Array(0)), X25519_DH.shared);
        peer.set(hex(X25519_DH.alicePublic));
        sk.set(hex(X25519_DH.bobPrivate));
        assert.equal(toHex(p.x25519(sk, peer) ?? new Uint8Array(0)), X25519_DH.shared);
        sk.set(hex(X25519_DH.alicePrivate));
        assert.notEqual(toHex(p.x25519(sk, peer) ?? new Uint8Array(0)), X25519_DH.shared);
      });
    });

    describe('Ed25519 (RFC 8032)', () => {
      for (const v of ED25519_VECTORS) {
        it(`§7.1 ${v.name}: public key, signature, verification`, () => {
          const sk = hex(v.secret);
          const msg = hex(v.message);
          assert.equal(toHex(p.ed25519PublicKey(sk)), v.public);
          assert.equal(toHex(p.ed25519Sign(sk, msg)), v.signature);
          assert.equal(p.ed25519Verify(hex(v.public), msg, hex(v.signature)), true);
        });
      }
      it('TEST 1024 message is 1,023 bytes', () => {
        assert.equal(hex(RFC8032_TEST1024_MESSAGE).length, 1023);
      });
      it('rejects a tampered signature, message or key', () => {
        const v = ED25519_VECTORS[2]!;
        const pk = hex(v.public);
        const msg = hex(v.message);
        const sig = hex(v.signature);
        assert.equal(p.ed25519Verify(pk, msg, flip(sig, 0)), false, 'R');
        assert.equal(p.ed25519Verify(pk, msg, flip(sig, 40)), false, 'S');
        assert.equal(p.ed25519Verify(pk, flip(msg, 1), sig), false, 'message');
        assert.equal(p.ed25519Verify(pk, concat(msg, new Uint8Array(1)), sig), false, 'message + 0');
        assert.equal(p.ed25519Verify(flip(pk, 3), msg, sig), false, 'key');
        assert.equal(p.ed25519Verify(hex(ED25519_VECTORS[0]!.public), msg, sig), false, 'other key');
      });
      it('rejects a non-canonical S (S + L, S = L, high bits set)', () => {
        for (const v of ED25519_VECTORS) {
          const sig = hex(v.signature);
          const sPlusL = concat(sig.subarray(0, 32), addL(sig.subarray(32)));
          assert.equal(p.ed25519Verify(hex(v.public), hex(v.message), sPlusL), false, v.name);
        }
        const v = ED25519_VECTORS[0]!;
        const sig = hex(v.signature);
        assert.equal(p.ed25519Verify(hex(v.public), hex(v.message), concat(sig.subarray(0, 32), hex(ED25519_L))), false);
        assert.equal(p.ed25519Verify(hex(v.public), hex(v.message), flip(sig, 63, 0xe0)), false);
      });
      it('rejects small-order public keys (the trivial signature R = identity, S = 0)', () => {
        const identity = hex(ED25519_SMALL_ORDER[2]!);
        const trivial = concat(identity, new Uint8Array(32));
        for (const pk of ED25519_SMALL_ORDER) {
          assert.equal(p.ed25519Verify(hex(pk), utf8('any message'), trivial), false, pk);
          assert.equal(p.ed25519Verify(hex(pk), new Uint8Array(0), concat(hex(pk), new Uint8Array(32))), false, pk);
        }
      });
      it('rejects non-canonical public key encodings (y ≥ p, x = 0 with sign bit)', () => {
        const trivial = concat(hex(ED25519_SMALL_ORDER[2]!), new Uint8Array(32));
        for (const pk of [
          'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p + 1 ≡ 1
          'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p ≡ 0
          '0100000000000000000000000000000000000000000000000000000000000080', // y = 1, x = -0
          'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', // y = p - 1, x = -0
          'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
        ]) {
          assert.equal(p.ed25519Verify(hex(pk), utf8('m'), trivial), false, pk);
        }
      });
      it('wrong-length inputs give false; wrong-length secret keys throw', () => {
        const v = ED25519_VECTORS[1]!;
        const pk = hex(v.public);
        const msg = hex(v.message);
        const sig = hex(v.signature);
        assert.equal(p.ed25519Verify(pk.subarray(1), msg, sig), false);
        assert.equal(p.ed25519Verify(concat(pk, new Uint8Array(1)), msg, sig), false);
        assert.equal(p.ed25519Verify(pk, msg, sig.subarray(1)), false);
        assert.equal(p.ed25519Verify(pk, msg, concat(sig, new Uint8Array(1))), false);
        assert.equal(p.ed25519Verify(new Uint8Array(0), msg, new Uint8Array(0)), false);
        assert.throws(() => p.ed25519Sign(hex(v.secret).subarray(1), msg), RangeError);
        assert.throws(() => p.ed25519PublicKey(new Uint8Array(64)), RangeError);
      });
      it('not-a-point public key gives false', () => {
        // y = 2 is not the y-coordinate of a curve point.
        const sig = hex(ED25519_VECTORS[0]!.signature);
        assert.equal(p.ed25519Verify(hex('02' + '00'.repeat(31)), new Uint8Array(0), sig), false);
      });
      it('generated keys sign and verify', () => {
        const kp = p.ed25519Generate();
        assert.equal(kp.secretKey.length, 32);
        assert.equal(toHex(p.ed25519PublicKey(kp.secretKey)), toHex(kp.publicKey));
        const msg = p.randomBytes(100);
        const sig = p.ed25519Sign(kp.secretKey, msg);
        assert.equal(sig.length, 64);
        assert.equal(p.ed25519Verify(kp.publicKey, msg, sig), true);
        assert.equal(p.ed25519Verify(kp.publicKey, flip(msg, 0), sig), false);
      });
      it('an array overwritten in place is read afresh (no stale cached key)', () => {
        const [v1, v2] = [ED25519_VECTORS[0]!, ED25519_VECTORS[1]!];
        const sk = hex(v1.secret);
        assert.equal(toHex(p.ed25519Sign(sk, hex(v1.message))), v1.signature);
        sk.set(hex(v2.secret));
        assert.equal(toHex(p.ed25519Sign(sk, hex(v2.message))), v2.signature);
        assert.equal(toHex(p.ed25519PublicKey(sk)), v2.public);
        const pk = hex(v1.public);
        assert.equal(p.ed25519Verify(pk, hex(v1.message), hex(v1.signature)), true);
        pk.set(hex(v2.public));
        assert.equal(p.ed25519Verify(pk, hex(v1.message), hex(v1.signature)), false);
        assert.equal(p.ed25519Verify(pk, hex(v2.message), hex(v2.signature)), true);
      });
    });

    describe('Ed25519 → X25519', () => {
      it('RFC 8032 TEST 1 public key and secret convert to the fixed values', () => {
        const v = ED25519_VECTORS[0]!;
        assert.equal(toHex(p.ed25519PublicToX25519(hex(v.public)) ?? new Uint8Array(0)), ED_TO_X_TEST1.u);
        assert.equal(toHex(p.ed25519SecretToX25519(hex(v.secret))), ED_TO_X_TEST1.secret);
      });
      it('toX(edPublic(seed)) == x25519PublicKey(toXSecret(seed)) for every RFC 8032 key and random seeds', () => {
        const seeds = [...ED25519_VECTORS.map((v) => hex(v.secret)), p.randomBytes(32), p.randomBytes(32)];
        for (const seed of seeds) {
          const u = p.ed25519PublicToX25519(p.ed25519PublicKey(seed));
          assert.ok(u !== null);
          assert.equal(toHex(u), toHex(p.x25519PublicKey(p.ed25519SecretToX25519(seed))));
        }
      });
      it('converted keys agree on X25519', () => {
        const a = p.ed25519Generate();
        const b = p.ed25519Generate();
        const ab = p.x25519(p.ed25519SecretToX25519(a.secretKey), p.ed25519PublicToX25519(b.publicKey)!);
        const ba = p.x25519(p.ed25519SecretToX25519(b.secretKey), p.ed25519PublicToX25519(a.publicKey)!);
        assert.ok(ab !== null);
        assert.equal(toHex(ab), toHex(ba ?? new Uint8Array(0)));
      });
      it('invalid points and wrong lengths give null', () => {
        assert.equal(p.ed25519PublicToX25519(hex('02' + '00'.repeat(31))), null, 'y = 2 is not on the curve');
        assert.equal(p.ed25519PublicToX25519(hex('01' + '00'.repeat(31))), null, 'identity: 1 - y = 0');
        assert.equal(
          p.ed25519PublicToX25519(hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')),
          null,
          'non-canonical y',
        );
        assert.equal(p.ed25519PublicToX25519(new Uint8Array(31)), null);
        assert.equal(p.ed25519PublicToX25519(new Uint8Array(33)), null);
        assert.throws(() => p.ed25519SecretToX25519(new Uint8Array(31)), RangeError);
      });
    });

    describe('ML-KEM-768 (FIPS 203)', () => {
      const f = MLKEM_FIXTURE;
      it('fixed seed and randomness give the known-answer fixture (computed with noble, checked with OpenSSL)', () => {
        const kp = p.mlKem768Generate(f.seed);
        assert.equal(kp.publicKey.length, 1184);
        assert.equal(kp.secretKey.length, 2400);
        assert.equal(toHex(p.sha256(kp.publicKey)), f.publicKeySha256);
        assert.equal(toHex(p.sha256(kp.secretKey)), f.secretKeySha256);
        const enc = p.mlKem768Encapsulate(kp.publicKey, f.m);
        assert.ok(enc !== null);
        assert.equal(enc.ciphertext.length, 1088);
        assert.equal(toHex(p.sha256(enc.ciphertext)), f.ciphertextSha256);
        assert.equal(toHex(enc.sharedSecret), f.sharedSecret);
        assert.equal(toHex(p.mlKem768Decapsulate(enc.ciphertext, kp.secretKey) ?? new Uint8Array(0)), f.sharedSecret);
      });
      it('a wrong ciphertext gives a different (implicit-rejection) secret, deterministically', () => {
        const kp = p.mlKem768Generate(f.seed);
        const enc = p.mlKem768Encapsulate(kp.publicKey, f.m)!;
        const bad = flip(enc.ciphertext, 0);
        const ss = p.mlKem768Decapsulate(bad, kp.secretKey);
        assert.ok(ss !== null);
        assert.equal(ss.length, 32);
        assert.notEqual(toHex(ss), f.sharedSecret);
        assert.equal(toHex(ss), f.rejectionSecret);
        const other = p.mlKem768Decapsulate(flip(enc.ciphertext, 1000), kp.secretKey);
        assert.notEqual(toHex(other ?? new Uint8Array(0)), f.sharedSecret);
      });
      it('random key pairs round-trip', () => {
        const kp = p.mlKem768Generate();
        const enc = p.mlKem768Encapsulate(kp.publicKey);
        assert.ok(enc !== null);
        assert.equal(toHex(p.mlKem768Decapsulate(enc.ciphertext, kp.secretKey) ?? new Uint8Array(0)), toHex(enc.sharedSecret));
        const kp2 = p.mlKem768Generate();
        assert.notEqual(toHex(kp.publicKey), toHex(kp2.publicKey));
        assert.notEqual(toHex(p.mlKem768Decapsulate(enc.ciphertext, kp2.secretKey) ?? new Uint8Array(0)), toHex(enc.sharedSecret));
      });
      it('malformed keys and ciphertexts give null (no throw)', () => {
        const kp = p.mlKem768Generate(f.seed);
        const enc = p.mlKem768Encapsulate(kp.publicKey, f.m)!;
        assert.equal(p.mlKem768Encapsulate(kp.publicKey.subarray(1)), null, 'short public key');
        assert.equal(p.mlKem768Encapsulate(concat(kp.publicKey, new Uint8Array(1))), null, 'long public key');
        assert.equal(p.mlKem768Encapsulate(new Uint8Array(0)), null, 'empty public key');
        // First coefficient 0xfff ≥ q = 3329: fails the FIPS 203 §7.2 modulus check.
        const unreduced = kp.publicKey.slice();
        unreduced[0] = 0xff;
        unreduced[1] = unreduced[1]! | 0x0f;
        assert.equal(p.mlKem768Encapsulate(unreduced), null, 'coefficient ≥ q');
        assert.equal(p.mlKem768Encapsulate(kp.publicKey, new Uint8Array(31)), null, 'short randomness');
        assert.equal(p.mlKem768Decapsulate(enc.ciphertext.subarray(1), kp.secretKey), null, 'short ciphertext');
        assert.equal(p.mlKem768Decapsulate(enc.ciphertext, kp.secretKey.subarray(1)), null, 'short secret key');
        // The secret key embeds H(ek); corrupting ek inside it fails the FIPS 203 §7.3 check.
        const badSk = flip(kp.secretKey, 1200);
        assert.equal(p.mlKem768Decapsulate(enc.ciphertext, badSk), null, 'inconsistent secret key');
        assert.throws(() => p.mlKem768Generate(new Uint8Array(32)), RangeError);
      });
    });

    describe('HPKE (RFC 9180 A.2, base mode, sequence 0)', () => {
      const v = HPKE_VECTOR;
      it('pkRm is the public key of skRm', () => {
        assert.equal(toHex(p.x25519PublicKey(hex(v.skRm))), v.pkRm);
      });
      it('seal with ikmE as the ephemeral seed gives the published enc and ciphertext', async () => {
        const sealed = await p.hpkeSeal(hex(v.pkRm), hex(v.info), hex(v.aad), hex(v.pt), hex(v.ikmE));
        assert.equal(toHex(sealed.enc), v.enc);
        assert.equal(toHex(sealed.ciphertext), v.ct);
      });
      it('open of the published ciphertext gives the plaintext', async () => {
        const pt = await p.hpkeOpen(hex(v.skRm), hex(v.enc), hex(v.info), hex(v.aad), hex(v.ct));
        assert.ok(pt !== null);
        assert.equal(toHex(pt), v.pt);
      });
      it('tampering with anything gives null', async () => {
        const open = (sk: string | Uint8Array, enc: Uint8Array, info: Uint8Array, aad: Uint8Array, ct: Uint8Array) =>
          p.hpkeOpen(typeof sk === 'string' ? hex(sk) : sk, enc, info, aad, ct);
        const [enc, info, aad, ct] = [hex(v.enc), hex(v.info), hex(v.aad), hex(v.ct)];
        assert.equal(await open(v.skRm, enc, info, aad, flip(ct, 0)), null, 'ciphertext');
        assert.equal(await open(v.skRm, enc, info, aad, flip(ct, ct.length - 1)), null, 'tag');
        assert.equal(await open(v.skRm, enc, info, flip(aad, 0), ct), null, 'aad');
        assert.equal(await open(v.skRm, enc, flip(info, 0), aad, ct), null, 'info');
        assert.equal(await open(v.skRm, flip(enc, 0), info, aad, ct), null, 'enc');
        assert.equal(await open(p.x25519Generate().secretKey, enc, info, aad, ct), null, 'other recipient');
        assert.equal(await open(v.skRm, new Uint8Array(32), info, aad, ct), null, 'low-order enc');
        assert.equal(await open(v.skRm, enc.subarray(1), info, aad, ct), null, 'short enc');
        assert.equal(await open(hex(v.skRm).subarray(1), enc, info, aad, ct), null, 'short key');
        assert.equal(await open(v.skRm, enc, info, aad, ct.subarray(0, 15)), null, 'short ciphertext');
      });
      it('random round trip; a bad recipient key makes seal reject', async () => {
        const r = p.x25519Generate();
        const pt = p.randomBytes(100);
        const sealed = await p.hpkeSeal(r.publicKey, utf8('info'), utf8('aad'), pt);
        assert.equal(sealed.enc.length, 32);
        assert.equal(sealed.ciphertext.length, 116);
        assert.equal(toHex((await p.hpkeOpen(r.secretKey, sealed.enc, utf8('info'), utf8('aad'), sealed.ciphertext)) ?? new Uint8Array(0)), toHex(pt));
        const again = await p.hpkeSeal(r.publicKey, utf8('info'), utf8('aad'), pt);
        assert.notEqual(toHex(again.enc), toHex(sealed.enc));
        await assert.rejects(p.hpkeSeal(r.publicKey.subarray(1), utf8('info'), utf8('aad'), pt));
        await assert.rejects(p.hpkeSeal(new Uint8Array(32), utf8('info'), utf8('aad'), pt));
      });
      it('an array overwritten in place is read afresh (no stale cached key)', async () => {
        const sk = hex(v.skRm);
        const args = [hex(v.enc), hex(v.info), hex(v.aad), hex(v.ct)] as const;
        assert.notEqual(await p.hpkeOpen(sk, ...args), null);
        sk.set(p.randomBytes(32));
        assert.equal(await p.hpkeOpen(sk, ...args), null);
        sk.set(hex(v.skRm));
        assert.notEqual(await p.hpkeOpen(sk, ...args), null);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------

/** Deterministic test inputs: SHA-256(label ‖ counter) blocks, taken from provider `a`. */
function detBytes(p: CryptoProvider, label: string, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0, off = 0; off < length; i++, off += 32) {
    out.set(p.sha256(concat(utf8(label), Uint8Array.of(i >> 8, i & 0xff))).subarray(0, Math.min(32, length - off)), off);
  }
  return out;
}

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

export function crossProviderSuite(a: CryptoProvider, b: CryptoProvider): void {
  describe(`crypto cross-check: ${a.name} vs ${b.name}`, () => {
    const same = (x: Uint8Array | null, y: Uint8Array | null, what: string): void => {
      assert.equal(x === null ? null : toHex(x), y === null ? null : toHex(y), what);
    };

    it('SHA-256, HMAC and HKDF agree on varied inputs', () => {
      for (const n of [0, 1, 55, 56, 63, 64, 65, 1000]) {
        const data = detBytes(a, `data${n}`, n);
        same(a.sha256(data), b.sha256(data), `sha256 ${n}`);
        same(a.hmacSha256(data, data), b.hmacSha256(data, data), `hmac key ${n}`);
        same(a.hmacSha512(data, data), b.hmacSha512(data, data), `hmac-sha512 key ${n}`);
        for (const length of [1, 32, 33, 100, 8160]) {
          same(a.hkdfSha256(data, data.subarray(0, 7), data.subarray(3), length), b.hkdfSha256(data, data.subarray(0, 7), data.subarray(3), length), `hkdf ${n}/${length}`);
        }
      }
      const longInfo = detBytes(a, 'info', 1500);
      same(a.hkdfSha256(new Uint8Array(0), new Uint8Array(0), longInfo, 77), b.hkdfSha256(new Uint8Array(0), new Uint8Array(0), longInfo, 77), 'hkdf empty ikm, long info');
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 1100 }), fc.integer({ min: 1, max: 300 }), (ikm, salt, info, length) => {
          same(a.hkdfSha256(ikm, salt, info, length), b.hkdfSha256(ikm, salt, info, length), 'hkdf');
          same(a.hmacSha256(salt, ikm), b.hmacSha256(salt, ikm), 'hmac');
        }),
        { numRuns: 200 },
      );
    });

    it('AEAD seal agrees byte for byte; each opens the other', () => {
      fc.assert(
        fc.property(bytes32, fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 40 }), (key, nonce, pt, aad) => {
          const ca = a.aeadSeal(key, nonce, pt, aad);
          same(ca, b.aeadSeal(key, nonce, pt, aad), 'seal');
          same(b.aeadOpen(key, nonce, ca, aad), pt, 'b opens a');
          same(a.aeadOpen(key, nonce, ca, aad), pt, 'a opens a');
          same(b.aeadOpen(key, nonce, flip(ca, ca.length - 1), aad), null, 'tamper');
        }),
        { numRuns: 200 },
      );
      const big = detBytes(a, 'big', 70_000);
      const key = detBytes(a, 'key', 32);
      const nonce = detBytes(a, 'nonce', 12);
      same(a.aeadSeal(key, nonce, big, big.subarray(0, 5000)), b.aeadSeal(key, nonce, big, big.subarray(0, 5000)), '70 kB');
    });

    it('X25519: public keys and shared secrets agree, including unclamped and non-canonical inputs', () => {
      fc.assert(
        fc.property(bytes32, bytes32, (sk, u) => {
          same(a.x25519PublicKey(sk), b.x25519PublicKey(sk), 'public');
          same(a.x25519(sk, u), b.x25519(sk, u), 'dh');
        }),
        { numRuns: 60 },
      );
      const sk = detBytes(a, 'x-sk', 32);
      for (let i = 0; i < 19; i++) {
        // u = p + i (non-canonical, ≡ i) and u with the top bit set: both must be reduced/masked alike.
        const u = hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f');
        u[0] = 0xed + i;
        same(a.x25519(sk, u), b.x25519(sk, u), `u = p + ${i}`);
        const top = detBytes(a, `top${i}`, 32);
        top[31] = top[31]! | 0x80;
        same(a.x25519(sk, top), b.x25519(sk, top), `top bit ${i}`);
      }
      for (const u of X25519_LOW_ORDER) same(a.x25519(sk, hex(u)), b.x25519(sk, hex(u)), `low order ${u}`);
    });

    it('Ed25519: public keys and signatures agree; verification agrees on edge cases', () => {
      fc.assert(
        fc.property(bytes32, fc.uint8Array({ maxLength: 300 }), (seed, msg) => {
          const pk = a.ed25519PublicKey(seed);
          same(pk, b.ed25519PublicKey(seed), 'public');
          const sig = a.ed25519Sign(seed, msg);
          same(sig, b.ed25519Sign(seed, msg), 'signature');
          assert.equal(b.ed25519Verify(pk, msg, sig), true);
        }),
        { numRuns: 40 },
      );
      const msg = utf8('edge');
      const seed = detBytes(a, 'ed-seed', 32);
      const pk = a.ed25519PublicKey(seed);
      const sig = a.ed25519Sign(seed, msg);
      const cases: Array<[string, Uint8Array, Uint8Array]> = [['valid', pk, sig]];
      for (const s of ED25519_SMALL_ORDER) {
        cases.push([`small-order key ${s}`, hex(s), concat(hex(ED25519_SMALL_ORDER[2]!), new Uint8Array(32))]);
        cases.push([`small-order R ${s}`, pk, concat(hex(s), sig.subarray(32))]);
      }
      cases.push(['S + L', pk, concat(sig.subarray(0, 32), addL(sig.subarray(32)))]);
      for (let i = 0; i < 40; i++) {
        cases.push([`random key ${i}`, detBytes(a, `rk${i}`, 32), sig]);
        cases.push([`random R ${i}`, pk, concat(detBytes(a, `rr${i}`, 32), sig.subarray(32))]);
      }
      for (const [what, key, s] of cases) assert.equal(a.ed25519Verify(key, msg, s), b.ed25519Verify(key, msg, s), what);
    });

    it('Ed25519 → X25519 conversions agree', () => {
      for (let i = 0; i < 10; i++) {
        const seed = detBytes(a, `conv${i}`, 32);
        same(a.ed25519SecretToX25519(seed), b.ed25519SecretToX25519(seed), 'secret');
        same(a.ed25519PublicToX25519(a.ed25519PublicKey(seed)), b.ed25519PublicToX25519(b.ed25519PublicKey(seed)), 'public');
        const junk = detBytes(a, `junk${i}`, 32);
        same(a.ed25519PublicToX25519(junk), b.ed25519PublicToX25519(junk), 'arbitrary bytes');
      }
      for (const s of ED25519_SMALL_ORDER) same(a.ed25519PublicToX25519(hex(s)), b.ed25519PublicToX25519(hex(s)), s);
    });

    it('ML-KEM-768 with seeds agrees; each decapsulates the other', () => {
      for (let i = 0; i < 3; i++) {
        const seed = detBytes(a, `kem${i}`, 64);
        const m = detBytes(a, `m${i}`, 32);
        const ka = a.mlKem768Generate(seed);
        const kb = b.mlKem768Generate(seed);
        same(ka.publicKey, kb.publicKey, 'public');
        same(ka.secretKey, kb.secretKey, 'secret');
        const ea = a.mlKem768Encapsulate(ka.publicKey, m)!;
        const eb = b.mlKem768Encapsulate(kb.publicKey, m)!;
        same(ea.ciphertext, eb.ciphertext, 'ciphertext');
        same(ea.sharedSecret, eb.sharedSecret, 'shared');
        same(b.mlKem768Decapsulate(ea.ciphertext, ka.secretKey), ea.sharedSecret, 'b decaps a');
        same(a.mlKem768Decapsulate(flip(ea.ciphertext, 7), ka.secretKey), b.mlKem768Decapsulate(flip(ea.ciphertext, 7), ka.secretKey), 'rejection');
      }
      const r = a.mlKem768Generate();
      const e = b.mlKem768Encapsulate(r.publicKey)!;
      same(a.mlKem768Decapsulate(e.ciphertext, r.secretKey), e.sharedSecret, 'random keys');
    });

    it('HPKE with an ephemeral seed agrees; each opens the other', async () => {
      for (let i = 0; i < 3; i++) {
        const skR = detBytes(a, `hpke-r${i}`, 32);
        const pkR = a.x25519PublicKey(skR);
        const seed = detBytes(a, `hpke-e${i}`, 32);
        const info = detBytes(a, `info${i}`, i * 10);
        const aad = detBytes(a, `aad${i}`, i * 7);
        const pt = detBytes(a, `pt${i}`, i * 100);
        const sa = await a.hpkeSeal(pkR, info, aad, pt, seed);
        const sb = await b.hpkeSeal(pkR, info, aad, pt, seed);
        same(sa.enc, sb.enc, 'enc');
        same(sa.ciphertext, sb.ciphertext, 'ciphertext');
        same(await b.hpkeOpen(skR, sa.enc, info, aad, sa.ciphertext), pt, 'b opens a');
      }
      const r = b.x25519Generate();
      const sealed = await a.hpkeSeal(r.publicKey, utf8('i'), utf8('a'), utf8('hello'));
      same(await b.hpkeOpen(r.secretKey, sealed.enc, utf8('i'), utf8('a'), sealed.ciphertext), utf8('hello'), 'a → b');
      const back = await b.hpkeSeal(r.publicKey, utf8('i'), utf8('a'), utf8('hello'));
      same(await a.hpkeOpen(r.secretKey, back.enc, utf8('i'), utf8('a'), back.ciphertext), utf8('hello'), 'b → a');
    });

    it('keys generated by one are usable by the other', () => {
      for (const [x, y] of [
        [a, b],
        [b, a],
      ] as const) {
        const k1 = x.x25519Generate();
        const k2 = y.x25519Generate();
        same(y.x25519PublicKey(k1.secretKey), k1.publicKey, 'x25519 public');
        const s12 = x.x25519(k1.secretKey, k2.publicKey);
        assert.ok(s12 !== null);
        same(y.x25519(k2.secretKey, k1.publicKey), s12, 'dh both ways');
        same(y.x25519(k1.secretKey, k2.publicKey), s12, 'dh same side');

        const e = x.ed25519Generate();
        same(y.ed25519PublicKey(e.secretKey), e.publicKey, 'ed25519 public');
        const msg = x.randomBytes(64);
        assert.equal(y.ed25519Verify(e.publicKey, msg, x.ed25519Sign(e.secretKey, msg)), true, 'x signs, y verifies');
        assert.equal(x.ed25519Verify(e.publicKey, msg, y.ed25519Sign(e.secretKey, msg)), true, 'y signs, x verifies');
      }
    });
  });
}
