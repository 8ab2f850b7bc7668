/**
 * The core entry (`@umbra/client`) and the HTTP clients (`@umbra/client/http`) are
 * platform-neutral: their import graphs, walked by esbuild (metafile), reach no Node builtin and
 * none of the Node-only or server packages. `@umbra/client/node` reaches them (so the walk sees
 * what it is looking for).
 */
import assert from 'node:assert/strict';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
// The core only: nothing in this file loads @umbra/client/node, so no platform is registered.
import { Client, ClientError, MemoryNetwork, platform } from '../src/index.ts';

const builtins = new Set(builtinModules);
const NODE_ONLY = /^(better-sqlite3|better-sqlite3-multiple-ciphers|argon2|ws|fastify|@fastify\/.*|postgres|@umbra\/services|@umbra\/crypto-node)(\/|$)/;

function isForbidden(path: string): boolean {
  return path.startsWith('node:') || builtins.has(path.split('/')[0]!) || NODE_ONLY.test(path);
}

/** Every forbidden import reached from `entry`, with the files that import it. */
async function forbiddenImports(entry: string): Promise<Map<string, string[]>> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'neutral',
    format: 'esm',
    mainFields: ['module', 'main'],
    logLevel: 'silent',
    plugins: [
      {
        name: 'forbidden-as-external',
        setup(b) {
          b.onResolve({ filter: /.*/ }, (a) => (isForbidden(a.path) ? { path: a.path, external: true } : undefined));
        },
      },
    ],
  });
  const found = new Map<string, string[]>();
  for (const [file, input] of Object.entries(result.metafile!.inputs)) {
    for (const i of input.imports) {
      if (!i.external) continue;
      found.set(i.path, [...(found.get(i.path) ?? []), file]);
    }
    // Workspace packages resolve to their sources: a file of the services or crypto-node is a leak too.
    if (/packages\/(services|crypto-node)\//.test(file)) found.set(file, [...(found.get(file) ?? []), '(bundled)']);
  }
  return found;
}

describe('platform-neutral entries', { timeout: 120_000 }, () => {
  it('@umbra/client (src/index.ts) imports no node: builtin, SQLite, argon2, ws or server package', async () => {
    const found = await forbiddenImports('../src/index.ts');
    assert.deepEqual([...found.entries()], []);
  });

  it('@umbra/client/http (src/http.ts) imports none either', async () => {
    const found = await forbiddenImports('../src/http.ts');
    assert.deepEqual([...found.entries()], []);
  });

  it('@umbra/client/node (src/node.ts) is where they are reached', async () => {
    const found = await forbiddenImports('../src/node.ts');
    // at-rest.ts calls the native argon2 package (its async hash runs off the main thread).
    for (const name of ['better-sqlite3-multiple-ciphers', 'better-sqlite3', 'ws', 'node:fs', 'argon2', '@umbra/crypto-node']) {
      assert.ok(found.has(name), `${name} is reached from the Node entry`);
    }
  });

  it('without a platform entry the core uses noble and refuses a dataDir (typed, nothing created)', async () => {
    assert.equal(platform().name, 'neutral');
    assert.equal(platform().crypto.name, 'noble');
    const parent = mkdtempSync(join(tmpdir(), 'umbra-core-'));
    try {
      const dataDir = join(parent, 'data');
      await assert.rejects(
        () => Client.open({ delivery: new MemoryNetwork().adapter(), dataDir }),
        (e: unknown) => e instanceof ClientError && e.code === 'invalid-argument' && /@umbra\/client\/node/.test(e.message),
      );
      assert.equal(existsSync(dataDir), false);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
