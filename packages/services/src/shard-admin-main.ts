/**
 * The operator's handle on sharded RSA mailboxes (docs/SCALING.md), without writing code:
 *   node --import tsx packages/services/src/shard-admin-main.ts <control-url> map
 *   … <control-url> add <name> <postgres-url>      register a shard (owns nothing until a move)
 *   … <control-url> bootstrap <name> [<name> …]     map version 1: the hash space split evenly
 *   … <control-url> move <lo> <hi> <shard>         move hash range [lo, hi) there
 *   … <control-url> resume                         finish moves a crash left unfinished
 * Prints one JSON object on stdout; a refused request exits 2 with its reason on stderr, any
 * other failure exits 1. Shard URLs are printed without their passwords.
 */
import { ShardAdmin, ShardMapError, type MoveReport } from './shards.ts';

function usage(): never {
  console.error('usage: shard-admin-main.ts <control-url> map | add <name> <url> | bootstrap <name>… | move <lo> <hi> <shard> | resume');
  process.exit(2);
}

/** A URL with any password replaced, for output. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

function integer(text: string | undefined, what: string): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(n)) throw new ShardMapError(`${what} must be a non-negative integer`);
  return n;
}

const moveJson = (r: MoveReport) => ({ lo: r.lo, hi: r.hi, src: r.src, dst: r.dst, toVersion: r.toVersion, copied: r.copied, synced: r.synced, deleted: r.deleted, fencedMs: Math.round(r.fencedMs) });

const [control, command, ...rest] = process.argv.slice(2);
if (!control || !/^postgres(ql)?:\/\//.test(control) || !command) usage();
const admin = new ShardAdmin(control);
let code = 0;
try {
  await admin.init();
  let result: unknown;
  switch (command) {
    case 'map': {
      const map = await admin.currentMap();
      result = map
        ? { version: map.version, entries: map.entries, shards: Object.fromEntries([...map.shards].map(([name, url]) => [name, redact(url)])), unfinished: await admin.unfinishedMoves() }
        : { version: null };
      break;
    }
    case 'add': {
      const [name, url] = rest;
      if (!name || !url) usage();
      await admin.addShard(name, url);
      result = { added: name };
      break;
    }
    case 'bootstrap':
      if (rest.length === 0) usage();
      result = { version: (await admin.bootstrap(rest)).version };
      break;
    case 'move': {
      const [lo, hi, dst] = rest;
      if (!dst) usage();
      result = moveJson(await admin.moveRange(integer(lo, 'lo'), integer(hi, 'hi'), dst));
      break;
    }
    case 'resume':
      result = { resumed: (await admin.resume()).map(moveJson) };
      break;
    default:
      usage();
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (e) {
  const message = String((e as Error)?.message ?? e).replace(/postgres(ql)?:\/\/\S*/g, '(a database URL)'); // never a password
  console.error(e instanceof ShardMapError ? `refused: ${message}` : `failed: ${message}`);
  code = e instanceof ShardMapError ? 2 : 1;
} finally {
  await admin.close().catch(() => {});
}
process.exit(code);
