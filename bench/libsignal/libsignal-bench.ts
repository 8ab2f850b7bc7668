// Benchmark of the peer implementation @signalapp/libsignal-client (Signal's
// PQXDH + Double Ratchet), used only as a speed reference for Umbra.
//
// The package is AGPL-3.0-only and is never a dependency of the Umbra
// packages: it lives in bench/libsignal/node_modules (installed on demand by
// ensure.ts) and is loaded here with a dynamic import of an absolute file URL,
// so this module also works when imported from bench/run.ts. No static import
// (not even `import type`) of the package appears, so the repo typechecks
// without it being installed.
//
// Run directly: node --import tsx bench/libsignal/libsignal-bench.ts [messages] [runs]
import { realpathSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ensureLibsignal, libsignalInstalled, LIBSIGNAL_ENTRY } from './ensure.ts';

export interface LibsignalBenchOptions {
  /** Messages per timed run (each = one encrypt + one decrypt). Default 2000. */
  messages?: number;
  /** Timed runs; the median is reported. Default 5. */
  runs?: number;
}

export interface LibsignalBenchResult {
  /** Alice→Bob only, 100 B plaintexts; median over runs. */
  oneWayMsgsPerSec: number;
  /** Alternating A→B, B→A (a DH ratchet step every turn); median over runs. */
  pingPongMsgsPerSec: number;
  /** processPreKeyBundle + first encrypt + decryptPreKey, median over runs (ms). */
  sessionSetupMs: number;
  /** Wire size of the first (PreKeySignalMessage, type 3) message with a 100 B plaintext. */
  prekeyMessageBytes: number;
  /**
   * Median wire size of the regular SignalMessages (type 2, 100 B plaintext)
   * sent in the timed runs. It varies (about 168-204 B) because SPQR spreads
   * its ML-KEM ratchet over the messages' pqRatchet field.
   */
  messageBytes: number;
}

export interface LibsignalBenchDetails extends LibsignalBenchResult {
  version: string;
  messages: number;
  oneWayRuns: number[];
  pingPongRuns: number[];
  setupRunsMs: number[];
  messageBytesMin: number;
  messageBytesMax: number;
}

// ---------------------------------------------------------------------------
// Minimal structural view of the parts of the libsignal API used here.
// (Kept local on purpose: see the header comment.)

type Bytes = Uint8Array<ArrayBuffer>;
interface PublicKey { serialize(): Bytes; equals(other: PublicKey): boolean }
interface PrivateKey { sign(msg: Bytes): Bytes; getPublicKey(): PublicKey }
interface IdentityKeyPair { publicKey: PublicKey; privateKey: PrivateKey }
interface KEMPublicKey { serialize(): Bytes }
interface KEMKeyPair { getPublicKey(): KEMPublicKey }
type Opaque = { readonly _nativeHandle: unknown };
interface ProtocolAddress extends Opaque { toString(): string }
interface CiphertextMessage { serialize(): Bytes; type(): number }
type AbstractCtor = abstract new () => object;

interface LibsignalModule {
  PrivateKey: { generate(): PrivateKey };
  IdentityKeyPair: { generate(): IdentityKeyPair };
  KEMKeyPair: { generate(): KEMKeyPair };
  ProtocolAddress: { new: (name: string, deviceId: number) => ProtocolAddress };
  PreKeyRecord: { new: (id: number, pub: PublicKey, priv: PrivateKey) => Opaque };
  SignedPreKeyRecord: { new: (id: number, ts: number, pub: PublicKey, priv: PrivateKey, sig: Bytes) => Opaque };
  KyberPreKeyRecord: { new: (id: number, ts: number, kp: KEMKeyPair, sig: Bytes) => Opaque };
  PreKeyBundle: {
    new: (
      registrationId: number, deviceId: number,
      prekeyId: number | null, prekey: PublicKey | null,
      signedPrekeyId: number, signedPrekey: PublicKey, signedPrekeySignature: Bytes,
      identityKey: PublicKey,
      kyberPrekeyId: number, kyberPrekey: KEMPublicKey, kyberPrekeySignature: Bytes,
    ) => Opaque;
  };
  SignalMessage: { deserialize(b: Bytes): Opaque };
  PreKeySignalMessage: { deserialize(b: Bytes): Opaque };
  CiphertextMessageType: { Whisper: number; PreKey: number };
  IdentityChange: { NewOrUnchanged: number; ReplacedExisting: number };
  SessionStore: AbstractCtor;
  IdentityKeyStore: AbstractCtor;
  PreKeyStore: AbstractCtor;
  SignedPreKeyStore: AbstractCtor;
  KyberPreKeyStore: AbstractCtor;
  processPreKeyBundle(bundle: Opaque, remote: ProtocolAddress, local: ProtocolAddress, ss: object, is: object): Promise<void>;
  signalEncrypt(msg: Bytes, remote: ProtocolAddress, local: ProtocolAddress, ss: object, is: object): Promise<CiphertextMessage>;
  signalDecrypt(msg: Opaque, remote: ProtocolAddress, local: ProtocolAddress, ss: object, is: object): Promise<Bytes>;
  signalDecryptPreKey(
    msg: Opaque, remote: ProtocolAddress, local: ProtocolAddress,
    ss: object, is: object, pks: object, spks: object, kpks: object,
  ): Promise<Bytes>;
}

let cached: { mod: LibsignalModule; version: string } | undefined;

async function loadLibsignal(): Promise<{ mod: LibsignalModule; version: string }> {
  if (cached) return cached;
  if (!libsignalInstalled()) {
    throw new Error('@signalapp/libsignal-client is not installed in bench/libsignal: call ensureLibsignal() first');
  }
  const mod = (await import(pathToFileURL(LIBSIGNAL_ENTRY).href)) as LibsignalModule;
  const pkgUrl = new URL('../package.json', pathToFileURL(LIBSIGNAL_ENTRY));
  const { readFile } = await import('node:fs/promises');
  const version = (JSON.parse(await readFile(pkgUrl, 'utf8')) as { version: string }).version;
  cached = { mod, version };
  return cached;
}

// ---------------------------------------------------------------------------
// In-memory stores, one party each, extending libsignal's abstract store
// classes. The classes are built at run time because the base classes only
// exist once the module has been imported.

interface Party {
  name: string;
  address: ProtocolAddress;
  identity: IdentityKeyPair;
  registrationId: number;
  sessionStore: object;
  identityStore: object;
  preKeyStore: object;
  signedPreKeyStore: object;
  kyberPreKeyStore: object;
  preKeys: Map<number, Opaque>;
  signedPreKeys: Map<number, Opaque>;
  kyberPreKeys: Map<number, Opaque>;
}

function makeParty(ls: LibsignalModule, name: string): Party {
  const identity = ls.IdentityKeyPair.generate();
  const registrationId = 1 + Math.floor(Math.random() * 16380);
  const sessions = new Map<string, unknown>();
  const identities = new Map<string, PublicKey>();
  const preKeys = new Map<number, Opaque>();
  const signedPreKeys = new Map<number, Opaque>();
  const kyberPreKeys = new Map<number, Opaque>();
  const missing = (what: string, id: number | string): Error => new Error(`${name}: no ${what} ${id}`);

  class MemSessionStore extends ls.SessionStore {
    async saveSession(addr: ProtocolAddress, record: unknown): Promise<void> { sessions.set(addr.toString(), record); }
    async getSession(addr: ProtocolAddress): Promise<unknown> { return sessions.get(addr.toString()) ?? null; }
    async getExistingSessions(addrs: ProtocolAddress[]): Promise<unknown[]> {
      return addrs.map((a) => {
        const r = sessions.get(a.toString());
        if (r === undefined) throw missing('session for', a.toString());
        return r;
      });
    }
  }
  class MemIdentityStore extends ls.IdentityKeyStore {
    async getIdentityKey(): Promise<PrivateKey> { return identity.privateKey; }
    async getLocalRegistrationId(): Promise<number> { return registrationId; }
    async saveIdentity(addr: ProtocolAddress, key: PublicKey): Promise<number> {
      const prev = identities.get(addr.toString());
      identities.set(addr.toString(), key);
      return prev !== undefined && !prev.equals(key) ? ls.IdentityChange.ReplacedExisting : ls.IdentityChange.NewOrUnchanged;
    }
    async isTrustedIdentity(addr: ProtocolAddress, key: PublicKey): Promise<boolean> {
      const known = identities.get(addr.toString());
      return known === undefined || known.equals(key); // trust on first use
    }
    async getIdentity(addr: ProtocolAddress): Promise<PublicKey | null> { return identities.get(addr.toString()) ?? null; }
  }
  class MemPreKeyStore extends ls.PreKeyStore {
    async savePreKey(id: number, rec: Opaque): Promise<void> { preKeys.set(id, rec); }
    async getPreKey(id: number): Promise<Opaque> {
      const r = preKeys.get(id);
      if (!r) throw missing('prekey', id);
      return r;
    }
    async removePreKey(id: number): Promise<void> { preKeys.delete(id); }
  }
  class MemSignedPreKeyStore extends ls.SignedPreKeyStore {
    async saveSignedPreKey(id: number, rec: Opaque): Promise<void> { signedPreKeys.set(id, rec); }
    async getSignedPreKey(id: number): Promise<Opaque> {
      const r = signedPreKeys.get(id);
      if (!r) throw missing('signed prekey', id);
      return r;
    }
  }
  class MemKyberPreKeyStore extends ls.KyberPreKeyStore {
    async saveKyberPreKey(id: number, rec: Opaque): Promise<void> { kyberPreKeys.set(id, rec); }
    async getKyberPreKey(id: number): Promise<Opaque> {
      const r = kyberPreKeys.get(id);
      if (!r) throw missing('kyber prekey', id);
      return r;
    }
    async markKyberPreKeyUsed(): Promise<void> { /* last-resort key: keep it */ }
  }

  return {
    name,
    address: ls.ProtocolAddress.new(name, 1),
    identity,
    registrationId,
    sessionStore: new MemSessionStore(),
    identityStore: new MemIdentityStore(),
    preKeyStore: new MemPreKeyStore(),
    signedPreKeyStore: new MemSignedPreKeyStore(),
    kyberPreKeyStore: new MemKyberPreKeyStore(),
    preKeys,
    signedPreKeys,
    kyberPreKeys,
  };
}

/** Gives `bob` a one-time, a signed and a Kyber prekey and returns his bundle. */
function publishBundle(ls: LibsignalModule, bob: Party): Opaque {
  const preKeyId = 1, signedPreKeyId = 2, kyberPreKeyId = 3;
  const now = Date.now();
  const preKey = ls.PrivateKey.generate();
  const signedPreKey = ls.PrivateKey.generate();
  const signedPreKeySig = bob.identity.privateKey.sign(signedPreKey.getPublicKey().serialize());
  const kyber = ls.KEMKeyPair.generate();
  const kyberSig = bob.identity.privateKey.sign(kyber.getPublicKey().serialize());
  bob.preKeys.set(preKeyId, ls.PreKeyRecord.new(preKeyId, preKey.getPublicKey(), preKey));
  bob.signedPreKeys.set(
    signedPreKeyId,
    ls.SignedPreKeyRecord.new(signedPreKeyId, now, signedPreKey.getPublicKey(), signedPreKey, signedPreKeySig),
  );
  bob.kyberPreKeys.set(kyberPreKeyId, ls.KyberPreKeyRecord.new(kyberPreKeyId, now, kyber, kyberSig));
  return ls.PreKeyBundle.new(
    bob.registrationId, 1,
    preKeyId, preKey.getPublicKey(),
    signedPreKeyId, signedPreKey.getPublicKey(), signedPreKeySig,
    bob.identity.publicKey,
    kyberPreKeyId, kyber.getPublicKey(), kyberSig,
  );
}

// ---------------------------------------------------------------------------

const PLAINTEXT_BYTES = 100;
const POOL = 64;

function plaintextPool(): Bytes[] {
  return Array.from({ length: POOL }, () => crypto.getRandomValues(new Uint8Array(PLAINTEXT_BYTES)));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * One message over the wire: encrypt, serialize, deserialize, decrypt.
 * Returns the wire bytes and the recovered plaintext.
 */
async function transfer(ls: LibsignalModule, from: Party, to: Party, pt: Bytes): Promise<{ wire: Bytes; type: number; out: Bytes }> {
  const ct = await ls.signalEncrypt(pt, to.address, from.address, from.sessionStore, from.identityStore);
  const wire = ct.serialize();
  const type = ct.type();
  let out: Bytes;
  if (type === ls.CiphertextMessageType.PreKey) {
    out = await ls.signalDecryptPreKey(
      ls.PreKeySignalMessage.deserialize(wire), from.address, to.address,
      to.sessionStore, to.identityStore, to.preKeyStore, to.signedPreKeyStore, to.kyberPreKeyStore,
    );
  } else if (type === ls.CiphertextMessageType.Whisper) {
    out = await ls.signalDecrypt(ls.SignalMessage.deserialize(wire), from.address, to.address, to.sessionStore, to.identityStore);
  } else {
    throw new Error(`unexpected ciphertext type ${type}`);
  }
  return { wire, type, out };
}

interface Session {
  alice: Party;
  bob: Party;
  setupMs: number;
  prekeyMessageBytes: number;
  messageBytes: number;
}

/**
 * Fresh Alice/Bob pair. Times processPreKeyBundle + first encrypt + decryptPreKey
 * (key generation and bundle publication are outside the timed region), then
 * lets Bob answer once so Alice's later messages are plain SignalMessages.
 */
async function newSession(ls: LibsignalModule, pool: Bytes[]): Promise<Session> {
  const alice = makeParty(ls, 'alice');
  const bob = makeParty(ls, 'bob');
  const bundle = publishBundle(ls, bob);
  const first = pool[0]!;

  const t0 = performance.now();
  await ls.processPreKeyBundle(bundle, bob.address, alice.address, alice.sessionStore, alice.identityStore);
  const m1 = await transfer(ls, alice, bob, first);
  const setupMs = performance.now() - t0;

  if (m1.type !== ls.CiphertextMessageType.PreKey) throw new Error(`first message has type ${m1.type}, expected PreKey`);
  if (!sameBytes(m1.out, first)) throw new Error('first message decrypted to the wrong plaintext');
  if (bob.preKeys.size !== 0) throw new Error('one-time prekey was not consumed');

  const reply = await transfer(ls, bob, alice, pool[1]!);
  if (reply.type !== ls.CiphertextMessageType.Whisper || !sameBytes(reply.out, pool[1]!)) throw new Error('bad reply');
  const m2 = await transfer(ls, alice, bob, pool[2]!);
  if (m2.type !== ls.CiphertextMessageType.Whisper || !sameBytes(m2.out, pool[2]!)) throw new Error('bad second message');

  return { alice, bob, setupMs, prekeyMessageBytes: m1.wire.length, messageBytes: m2.wire.length };
}

async function oneWay(ls: LibsignalModule, s: Session, pool: Bytes[], n: number, sizes?: number[]): Promise<number> {
  const t0 = performance.now();
  let last: { out: Bytes; wire: Bytes } | undefined;
  for (let i = 0; i < n; i++) {
    last = await transfer(ls, s.alice, s.bob, pool[i % POOL]!);
    sizes?.push(last.wire.length);
  }
  const secs = (performance.now() - t0) / 1000;
  if (n > 0 && !sameBytes(last!.out, pool[(n - 1) % POOL]!)) throw new Error('one-way: wrong plaintext');
  return n / secs;
}

async function pingPong(ls: LibsignalModule, s: Session, pool: Bytes[], n: number, sizes?: number[]): Promise<number> {
  const t0 = performance.now();
  let last: { out: Bytes; wire: Bytes } | undefined;
  for (let i = 0; i < n; i++) {
    last = i % 2 === 0
      ? await transfer(ls, s.alice, s.bob, pool[i % POOL]!)
      : await transfer(ls, s.bob, s.alice, pool[i % POOL]!);
    sizes?.push(last.wire.length);
  }
  const secs = (performance.now() - t0) / 1000;
  if (n > 0 && !sameBytes(last!.out, pool[(n - 1) % POOL]!)) throw new Error('ping-pong: wrong plaintext');
  return n / secs;
}

/** Same as benchLibsignal, with the per-run figures and the library version. */
export async function benchLibsignalDetailed(opts: LibsignalBenchOptions = {}): Promise<LibsignalBenchDetails> {
  const messages = Math.max(1, Math.floor(opts.messages ?? 2000));
  const runs = Math.max(1, Math.floor(opts.runs ?? 5));
  const { mod: ls, version } = await loadLibsignal();
  const pool = plaintextPool();

  // Warm-up: a few sessions and a share of the traffic, not recorded.
  const warmN = Math.min(messages, 500);
  for (let i = 0; i < 3; i++) {
    const s = await newSession(ls, pool);
    await oneWay(ls, s, pool, warmN);
    await pingPong(ls, s, pool, warmN);
  }

  const setupRunsMs: number[] = [];
  const oneWayRuns: number[] = [];
  const pingPongRuns: number[] = [];
  let prekeyMessageBytes = 0;
  const sizes: number[] = [];
  for (let r = 0; r < runs; r++) {
    const a = await newSession(ls, pool);
    setupRunsMs.push(a.setupMs);
    prekeyMessageBytes = a.prekeyMessageBytes;
    sizes.push(a.messageBytes);
    oneWayRuns.push(await oneWay(ls, a, pool, messages, sizes));
    const b = await newSession(ls, pool);
    setupRunsMs.push(b.setupMs);
    pingPongRuns.push(await pingPong(ls, b, pool, messages, sizes));
  }

  return {
    oneWayMsgsPerSec: median(oneWayRuns),
    pingPongMsgsPerSec: median(pingPongRuns),
    sessionSetupMs: median(setupRunsMs),
    prekeyMessageBytes,
    messageBytes: median(sizes),
    version,
    messages,
    oneWayRuns,
    pingPongRuns,
    setupRunsMs,
    messageBytesMin: sizes.reduce((a, b) => Math.min(a, b)),
    messageBytesMax: sizes.reduce((a, b) => Math.max(a, b)),
  };
}

/** Timed runs on warmed-up sessions, for interleaving with another implementation's runs. */
export interface PairedRunner {
  oneWay(messages: number): Promise<number>;
  pingPong(messages: number): Promise<number>;
  /** One fresh session's setup (ms): processPreKeyBundle + first encrypt + decryptPreKey. */
  setup(): Promise<number>;
}

/** A one-way and a ping-pong session, warmed up, timed run by run (msgs/s per call). */
export async function libsignalRunner(): Promise<PairedRunner> {
  const { mod: ls } = await loadLibsignal();
  const pool = plaintextPool();
  const a = await newSession(ls, pool);
  const b = await newSession(ls, pool);
  await oneWay(ls, a, pool, 500);
  await pingPong(ls, b, pool, 500);
  return { oneWay: (n) => oneWay(ls, a, pool, n), pingPong: (n) => pingPong(ls, b, pool, n), setup: async () => (await newSession(ls, pool)).setupMs };
}

/**
 * Benchmarks @signalapp/libsignal-client. Call ensureLibsignal() first; throws
 * if the package is not installed in bench/libsignal.
 */
export async function benchLibsignal(opts: LibsignalBenchOptions = {}): Promise<LibsignalBenchResult> {
  const d = await benchLibsignalDetailed(opts);
  return {
    oneWayMsgsPerSec: d.oneWayMsgsPerSec,
    pingPongMsgsPerSec: d.pingPongMsgsPerSec,
    sessionSetupMs: d.sessionSetupMs,
    prekeyMessageBytes: d.prekeyMessageBytes,
    messageBytes: d.messageBytes,
  };
}

// ---------------------------------------------------------------------------

function isMain(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return realpathSync(arg) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  const messages = process.argv[2] ? Number(process.argv[2]) : undefined;
  const runs = process.argv[3] ? Number(process.argv[3]) : undefined;
  if (!(await ensureLibsignal())) {
    console.log('libsignal: unavailable');
    process.exitCode = 1;
  } else {
    const d = await benchLibsignalDetailed({ messages, runs });
    const r0 = (xs: number[]): string => xs.map((x) => Math.round(x)).join(',');
    console.log(`libsignal ${d.version} (@signalapp/libsignal-client, PQXDH + Double Ratchet/SPQR), ${d.messages} msgs x ${d.oneWayRuns.length} runs, ${PLAINTEXT_BYTES} B plaintexts`);
    console.log(`  session setup      median ${d.sessionSetupMs.toFixed(2)} ms   (processPreKeyBundle + encrypt + decryptPreKey)`);
    console.log(`  one way A->B       median ${Math.round(d.oneWayMsgsPerSec)} msg/s   (runs ${r0(d.oneWayRuns)})`);
    console.log(`  ping-pong A<->B    median ${Math.round(d.pingPongMsgsPerSec)} msg/s   (runs ${r0(d.pingPongRuns)})`);
    console.log(`  wire bytes         prekey message ${d.prekeyMessageBytes} B, message median ${d.messageBytes} B (range ${d.messageBytesMin}-${d.messageBytesMax} B)`);
  }
}
