/**
 * Stable names for conversations and groups. Each gets, the first time the CLI sees it, a
 * number (conversations and groups counted separately) and a handle (the name in lower case
 * with a suffix when taken: "bob", "bob2"); both are kept in the store's settings and never
 * reassigned, so `send 2` and `send bob` keep meaning the same person whoever writes next.
 * `rename` gives a conversation a local name (an alias, also accepted as a reference);
 * `verify --mark` records the safety number the user compared.
 */
import { CliError } from './errors.ts';
import { SETTING, readJsonSetting, type Settings } from './settings.ts';

export interface ConversationName {
  readonly handle: string;
  readonly n: number;
  readonly alias?: string;
  /** The safety number marked verified (digits without spaces). */
  readonly verified?: string;
}

export interface GroupName {
  readonly handle: string;
  readonly n: number;
}

interface NamesDoc {
  v: 1;
  conversations: Record<string, ConversationName>;
  groups: Record<string, GroupName>;
  nextConversation: number;
  nextGroup: number;
}

const isDoc = (v: unknown): v is NamesDoc => {
  const d = v as Partial<NamesDoc> | null;
  return d !== null && typeof d === 'object' && d.v === 1 && typeof d.conversations === 'object' && typeof d.groups === 'object' && Number.isInteger(d.nextConversation) && Number.isInteger(d.nextGroup);
};

/** "Bob Smith" → "bob-smith"; at most 16 characters; never only digits (those are numbers). */
export function slug(name: string, fallback: string): string {
  const s = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 16)
    .replace(/-+$/, '');
  if (s === '') return fallback;
  return /^\d+$/.test(s) ? `${fallback}-${s}` : s;
}

export interface NamedConversation {
  readonly id: string;
  readonly peerName: string;
  readonly createdAt: number;
}

export interface NamedGroup {
  readonly chatId: string;
  readonly name: string;
}

export const digitsOf = (safetyNumber: string): string => safetyNumber.replace(/\s+/g, '');

export class NameBook {
  private dirty = false;

  private constructor(
    private readonly settings: Settings,
    private readonly doc: NamesDoc,
  ) {}

  static async load(settings: Settings): Promise<NameBook> {
    const doc = (await readJsonSetting(settings, SETTING.names, isDoc)) ?? { v: 1, conversations: {}, groups: {}, nextConversation: 1, nextGroup: 1 };
    return new NameBook(settings, doc);
  }

  private taken(): Set<string> {
    return new Set([...Object.values(this.doc.conversations).map((c) => c.handle), ...Object.values(this.doc.groups).map((g) => g.handle)]);
  }

  private unique(base: string): string {
    const taken = this.taken();
    if (!taken.has(base)) return base;
    for (let i = 2; ; i++) if (!taken.has(`${base}${i}`)) return `${base}${i}`;
  }

  /** Give new conversations and groups their number and handle (oldest first). */
  assign(conversations: readonly NamedConversation[], groups: readonly NamedGroup[]): void {
    for (const c of [...conversations].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))) {
      if (this.doc.conversations[c.id] !== undefined) continue;
      this.doc.conversations[c.id] = { handle: this.unique(slug(c.peerName, 'contact')), n: this.doc.nextConversation++ };
      this.dirty = true;
    }
    for (const g of groups) {
      if (this.doc.groups[g.chatId] !== undefined) continue;
      this.doc.groups[g.chatId] = { handle: this.unique(slug(g.name, 'group')), n: this.doc.nextGroup++ };
      this.dirty = true;
    }
  }

  conversation(id: string): ConversationName {
    const c = this.doc.conversations[id];
    if (c === undefined) throw new CliError('internal', 'a conversation has no handle yet');
    return c;
  }

  group(chatId: string): GroupName {
    const g = this.doc.groups[chatId];
    if (g === undefined) throw new CliError('internal', 'a group has no handle yet');
    return g;
  }

  /** What to call a conversation: its alias, else the peer's name. */
  label(c: { id: string; peerName: string }): string {
    return this.doc.conversations[c.id]?.alias ?? (c.peerName || '(no name)');
  }

  rename(id: string, alias: string): void {
    const name = alias.trim();
    if (name === '' || name.length > 64) throw new CliError('usage', 'a name is 1 to 64 characters');
    if (/^\d+$/.test(name)) throw new CliError('usage', 'a name cannot be only digits (those are conversation numbers)');
    for (const [other, c] of Object.entries(this.doc.conversations)) {
      if (other !== id && (c.alias?.toLowerCase() === name.toLowerCase() || c.handle === name.toLowerCase())) {
        throw new CliError('usage', `"${name}" already names another conversation (${c.handle})`, { hint: 'pick another name' });
      }
    }
    this.doc.conversations[id] = { ...this.conversation(id), alias: name };
    this.dirty = true;
  }

  markVerified(id: string, safetyNumber: string): void {
    this.doc.conversations[id] = { ...this.conversation(id), verified: digitsOf(safetyNumber) };
    this.dirty = true;
  }

  /** 'yes' when the marked number is the current one, 'changed' when it no longer is. */
  verified(id: string, safetyNumber: string): 'yes' | 'no' | 'changed' {
    const v = this.doc.conversations[id]?.verified;
    if (v === undefined) return 'no';
    return v === digitsOf(safetyNumber) ? 'yes' : 'changed';
  }

  /**
   * A conversation named on the command line: its number, handle, alias, the peer's name when
   * unique, or an id prefix (≥ 4 hex characters).
   */
  findConversation<C extends NamedConversation>(ref: string, all: readonly C[]): C {
    const r = ref.trim();
    const lower = r.toLowerCase();
    const entry = (c: C) => this.doc.conversations[c.id];
    const exact = all.filter((c) => (/^\d+$/.test(r) && entry(c)?.n === Number(r)) || entry(c)?.handle === lower || entry(c)?.alias?.toLowerCase() === lower);
    if (exact.length === 1) return exact[0]!;
    const loose = [
      ...all.filter((c) => c.peerName.toLowerCase() === lower),
      ...(/^[0-9a-f]{4,32}$/.test(lower) ? all.filter((c) => c.id.startsWith(lower)) : []),
    ].filter((c, i, a) => a.indexOf(c) === i);
    if (loose.length === 1) return loose[0]!;
    if (loose.length > 1) {
      throw new CliError('ambiguous', `"${ref}" matches ${loose.length} conversations (${loose.map((c) => entry(c)?.handle ?? c.id.slice(0, 8)).join(', ')})`, { hint: 'use the handle or number from "umbra list"' });
    }
    throw new CliError('not-found', `no conversation "${ref}"`, { hint: '"umbra list" shows them' });
  }

  /** A group named on the command line: its number, handle, name (or a prefix of it, when unique) or an id prefix. */
  findGroup<G extends NamedGroup>(ref: string, all: readonly G[]): G {
    const r = ref.trim();
    const lower = r.toLowerCase();
    const entry = (g: G) => this.doc.groups[g.chatId];
    const exact = all.filter((g) => (/^\d+$/.test(r) && entry(g)?.n === Number(r)) || entry(g)?.handle === lower || g.name.toLowerCase() === lower);
    if (exact.length === 1) return exact[0]!;
    const loose = all.filter((g) => g.name.toLowerCase().startsWith(lower) || (lower.length >= 4 && g.chatId.toLowerCase().startsWith(lower)));
    if (exact.length === 0 && loose.length === 1) return loose[0]!;
    const many = exact.length > 1 ? exact : loose;
    if (many.length > 1) throw new CliError('ambiguous', `"${ref}" matches ${many.length} groups (${many.map((g) => entry(g)?.handle ?? g.name).join(', ')})`, { hint: 'use the handle or number from "umbra group list"' });
    throw new CliError('not-found', `no group "${ref}"`, { hint: '"umbra group list" shows them' });
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await this.settings.set({ [SETTING.names]: JSON.stringify(this.doc) });
    this.dirty = false;
  }
}
