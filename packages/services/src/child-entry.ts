/**
 * How the services start their own child processes (rsa-main, instance-main): from an esbuild
 * bundle of the sources when one can be built, else through tsx as before. A restart through
 * tsx compiles every module again (1.5-1.7 s to READY here, the killed RSA's whole outage under
 * the load test); the bundle starts in 0.3-0.5 s (docs/SCALING.md).
 *
 * The bundle is built the way packages/cli/bin/umbra.js builds the CLI: into
 * packages/services/node_modules/.cache/umbra-services/build-<time>-<pid>/, published by renaming a
 * `current` pointer (processes starting together never see half a bundle), rebuilt when a
 * source of the bundled workspace packages (or npm's record of the installed ones) is newer than
 * the pointer. A process keeps the build it chose first, so the children it restarts run the
 * code it started with; if that build was pruned meanwhile, it builds again.
 * UMBRA_CHILD_TSX=1 forces tsx (debugging).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type ChildEntryName = 'rsa-main' | 'instance-main';
const ENTRIES: readonly ChildEntryName[] = ['rsa-main', 'instance-main'];

/** The services' src directory, also when this module runs inside another bundle (the CLI's). */
function servicesSrc(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'rsa-main.ts'))) return here;
  return dirname(createRequire(import.meta.url).resolve('@umbra/services'));
}

let located: { src: string; dist: string; sources: string[]; installed: string } | null = null;
/** Where things are; found at first use (this module is also in the CLI's bundle, which never starts children). */
function where(): { src: string; dist: string; sources: string[]; installed: string } {
  if (located) return located;
  const src = servicesSrc();
  const packages = join(src, '..', '..');
  located = {
    src,
    dist: join(src, '..', 'node_modules', '.cache', 'umbra-services'),
    // The workspace packages the bundle holds (services imports protocol and crypto-node).
    sources: ['services/src', 'protocol/src', 'crypto-node/src'].map((d) => join(packages, d)),
    // npm rewrites this at every install: a changed dependency rebuilds the bundle too.
    installed: join(packages, '..', 'node_modules', '.package-lock.json'),
  };
  return located;
}
/** Packages with native code, or optional: never bundled. */
const NATIVE = ['better-sqlite3', 'pqclean', 'argon2', 'bufferutil', 'utf-8-validate'];

export interface ChildCommand {
  /** Arguments for process.execPath before the child's own (its script included). */
  readonly args: string[];
  readonly bundled: boolean;
}

function newestSource(): number {
  const { sources, installed } = where();
  let newest = existsSync(installed) ? statSync(installed).mtimeMs : 0;
  for (const dir of sources) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir, { recursive: true })) newest = Math.max(newest, statSync(join(dir, String(f))).mtimeMs);
  }
  return newest;
}

/** The published build's directory if it is newer than every source, else null. */
function currentBuild(): string | null {
  const { dist } = where();
  const pointer = join(dist, 'current');
  try {
    const dir = join(dist, readFileSync(pointer, 'utf8').trim());
    if (ENTRIES.every((e) => existsSync(join(dir, `${e}.js`))) && statSync(pointer).mtimeMs >= newestSource()) return dir;
  } catch {
    // no build yet
  }
  return null;
}

async function build(): Promise<string | null> {
  const { src, dist } = where();
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    return null;
  }
  const started = new Date();
  const name = `build-${started.getTime()}-${process.pid}`;
  try {
    mkdirSync(dist, { recursive: true });
    await esbuild.build({
      entryPoints: ENTRIES.map((e) => join(src, `${e}.ts`)),
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outdir: join(dist, name),
      // Linked, not loaded by default (--enable-source-maps costs ~50 ms per start): NODE_OPTIONS=--enable-source-maps to read a child's stack traces.
      sourcemap: true,
      logLevel: 'silent',
      // The bundled CommonJS dependencies' require().
      banner: { js: "import { createRequire as __umbraRequire } from 'node:module'; const require = __umbraRequire(import.meta.url);" },
      // Native addons (and ws' optional ones) load from node_modules; the rest is bundled: a child
      // that loads fastify, postgres and noble from node_modules module by module starts ~0.35 s later.
      external: NATIVE,
    });
  } catch {
    rmSync(join(dist, name), { recursive: true, force: true });
    return null;
  } finally {
    // esbuild's service process would otherwise live as long as this one.
    await esbuild.stop?.();
  }
  try {
    const pointer = join(dist, 'current');
    const tmp = `${pointer}.${process.pid}`;
    writeFileSync(tmp, name);
    // Dated when the build started: a source saved during the build makes the next start build again.
    utimesSync(tmp, started, started);
    renameSync(tmp, pointer);
    // Keep the newest few builds: other processes may still start children from theirs (and rebuild if theirs is gone).
    const builds = readdirSync(dist)
      .filter((d) => d.startsWith('build-'))
      .sort((a, b) => Number(b.split('-')[1]) - Number(a.split('-')[1]));
    for (const old of builds.slice(4)) rmSync(join(dist, old), { recursive: true, force: true });
  } catch {
    // Not published or not pruned: this process still uses its own build.
  }
  return join(dist, name);
}

let chosen: Promise<string | null> | null = null;

/** The build this process starts its children from (built or rebuilt when needed); null: use tsx. */
async function bundleDir(): Promise<string | null> {
  if (process.env.UMBRA_CHILD_TSX === '1') return null;
  const dir = chosen ? await chosen : null;
  if (dir !== null && ENTRIES.every((e) => existsSync(join(dir, `${e}.js`)))) return dir;
  if (dir === null && chosen) return null; // tried and failed: tsx for the rest of this process
  chosen = Promise.resolve().then(() => currentBuild() ?? build());
  return chosen;
}

/** How to start child entry `name`: `spawn(process.execPath, [...cmd.args, ...childArgs])`. */
export async function childCommand(name: ChildEntryName): Promise<ChildCommand> {
  const dir = await bundleDir();
  if (dir !== null) return { args: [join(dir, `${name}.js`)], bundled: true };
  return { args: ['--import', 'tsx', join(where().src, `${name}.ts`)], bundled: false };
}
