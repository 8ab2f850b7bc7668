/**
 * The account at open: the store (a dataDir's comes from the platform entry), the identity key
 * and profile name from it, or a new identity (fresh, or restored from an exported account key)
 * written before anything else uses it.
 */
import { toHex, type CryptoProvider } from '@umbra/protocol';
import type { ClientOptions } from './client-types.ts';
import type { AccountKey } from './conversation-state.ts';
import { ClientError } from './errors.ts';
import { platform } from './platform.ts';
import type { Store } from './store.ts';

export async function openAccount(store: Store, crypto: CryptoProvider, options: ClientOptions, now: number): Promise<{ key: AccountKey; profileName: string }> {
  const stored = await store.account.get();
  if (stored === null) {
    const secret = options.restoreAccountKey;
    const key = secret !== undefined ? { publicKey: crypto.ed25519PublicKey(secret), secretKey: new Uint8Array(secret) } : crypto.ed25519Generate();
    const profileName = options.profile?.name ?? '';
    await store.write({ account: { publicKey: key.publicKey, secretKey: key.secretKey, profileName, createdAt: now } });
    return { key, profileName };
  }
  const key = { publicKey: stored.publicKey, secretKey: stored.secretKey };
  if (options.restoreAccountKey !== undefined && toHex(crypto.ed25519PublicKey(options.restoreAccountKey)) !== toHex(key.publicKey)) {
    throw new ClientError('invalid-argument', 'this store already holds a different identity');
  }
  if (options.profile === undefined || options.profile.name === stored.profileName) return { key, profileName: stored.profileName };
  await store.write({ account: { ...stored, profileName: options.profile.name } });
  return { key, profileName: options.profile.name };
}

/** The store of `Client.open({ dataDir })`: the platform's (@umbra/client/node: SQLite in the directory). */
export function openDataDirStore(options: ClientOptions, crypto: CryptoProvider): Promise<Store> {
  return platform().openDataDirStore({
    dataDir: options.dataDir!,
    crypto,
    ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
    ...(options.argon2id !== undefined ? { argon2id: options.argon2id } : {}),
  });
}
