#!/usr/bin/env node
/**
 * The `umbra` command. It runs a JavaScript bundle of the sources (node_modules/.cache/umbra-cli, made by esbuild the
 * first time the command runs after a source changed: about half a second, once), so a command
 * does not pay for compiling TypeScript at every start (`umbra serve` included: an instance
 * restarted by its supervisor listens sooner). `umbra hub` runs the sources through tsx instead:
 * it builds the web app from files next to its sources; its RSA processes start from the
 * services' own bundle (packages/services/src/child-entry.ts). Without esbuild, or if a build
 * fails, everything runs through tsx as before.
 */
/* global process */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..');
const packages = join(cli, '..');
/** A cache, like other tools' (git and the linter leave node_modules alone); bare imports resolve from here as from src/. */
const dist = join(cli, 'node_modules', '.cache', 'umbra-cli');
/** What the bundle is made of: the CLI and the workspace packages it bundles. */
const SOURCES = ['cli/src', 'client/src', 'protocol/src', 'crypto-node/src', 'services/src'].map((d) => join(packages, d));
const VALUE_OPTIONS = new Set(['-d', '--data', '--hub', '--mailbox', '--transport', '--bootstrap']);

function commandOf(argv) {
  for (let i = 0; i < argv.length; i++) {
    if (VALUE_OPTIONS.has(argv[i])) i++;
    else if (!argv[i].startsWith('-')) return argv[i];
  }
  return null;
}

function newestSource() {
  let newest = 0;
  for (const dir of SOURCES) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir, { recursive: true })) newest = Math.max(newest, statSync(join(dir, f)).mtimeMs);
  }
  return newest;
}

/** The bundle's entry, rebuilt when a source is newer than it; null when it cannot be built. */
async function bundle() {
  const pointer = join(dist, 'current');
  try {
    const current = join(dist, readFileSync(pointer, 'utf8').trim(), 'main.js');
    if (existsSync(current) && statSync(pointer).mtimeMs >= newestSource()) return current;
  } catch {
    // no bundle yet
  }
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    return null;
  }
  // Each build in its own directory, published by renaming the pointer: commands starting at the same time never see half a bundle.
  const started = new Date();
  const name = `build-${started.getTime()}-${process.pid}`;
  mkdirSync(dist, { recursive: true });
  // main.ts reads its version from ../package.json, one level up from the entry.
  const { version } = JSON.parse(readFileSync(join(cli, 'package.json'), 'utf8'));
  writeFileSync(join(dist, 'package.json'), JSON.stringify({ private: true, type: 'module', version }) + '\n');
  try {
    await esbuild.build({
      entryPoints: [join(cli, 'src', 'main.ts')],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      outdir: join(dist, name),
      logLevel: 'silent',
      // The bundled CommonJS dependencies' require().
      banner: { js: "import { createRequire as __umbraRequire } from 'node:module'; const require = __umbraRequire(import.meta.url);" },
      // The workspace's TypeScript is bundled; every other package is loaded from node_modules as it is.
      plugins: [{ name: 'node-modules-external', setup: (b) => b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@umbra/') ? undefined : { path: a.path, external: true })) }],
    });
  } catch {
    rmSync(join(dist, name), { recursive: true, force: true });
    return null;
  } finally {
    // esbuild's service process would otherwise live as long as this command (an agent: for days).
    await esbuild.stop?.();
  }
  const tmp = `${pointer}.${process.pid}`;
  writeFileSync(tmp, name);
  // Dated when the build started: a source saved during the build makes the next command build again.
  utimesSync(tmp, started, started);
  renameSync(tmp, pointer);
  // Keep the newest few builds: a long-running agent may still load chunks from an older one.
  const builds = readdirSync(dist).filter((d) => d.startsWith('build-')).sort((a, b) => Number(b.split('-')[1]) - Number(a.split('-')[1]));
  for (const old of builds.slice(3)) rmSync(join(dist, old), { recursive: true, force: true });
  return join(dist, name, 'main.js');
}

const command = commandOf(process.argv.slice(2));
const entry = command === 'hub' ? null : await bundle();
if (entry !== null) await import(pathToFileURL(entry).href);
else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
