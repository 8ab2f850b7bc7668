/**
 * The CLI's own settings (transport, handles, aliases, verified safety numbers): documents in
 * the client store's `settings` concept, so they are
 * encrypted with everything else and written in the store's transactions. Keys are prefixed
 * `cli.` so other apps sharing a store do not collide with them.
 */
import type { Store } from '@umbra/client/node';

export interface Settings {
  get(key: string): Promise<string | null>;
  /** One write for all the entries (a null value deletes the key). */
  set(entries: Record<string, string | null>): Promise<void>;
}

export const SETTING = {
  transport: 'cli.transport',
  names: 'cli.names',
} as const;

export function storeSettings(store: Store): Settings {
  return {
    get: (key) => store.settings.get(key),
    set: (entries) => store.write({ settings: Object.entries(entries).map(([key, value]) => ({ key, value })) }),
  };
}

/** A JSON document in a setting; a value that does not parse is treated as absent (and rewritten on the next save). */
export async function readJsonSetting<T>(settings: Settings, key: string, valid: (v: unknown) => v is T): Promise<T | null> {
  const raw = await settings.get(key);
  if (raw === null) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return valid(v) ? v : null;
  } catch {
    return null;
  }
}
