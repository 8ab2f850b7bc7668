// Installs the benchmark-only peer implementation @signalapp/libsignal-client
// (AGPL-3.0-only, ~151 MB with its prebuilt native binaries) into
// bench/libsignal/node_modules on demand. It is deliberately NOT a dependency
// of the root package.json or of any workspace package: nothing in Umbra links
// against it; it only serves as a speed reference in the benchmarks.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Absolute path of bench/libsignal (the folder holding this file). */
export const LIBSIGNAL_DIR = fileURLToPath(new URL('.', import.meta.url));

/** Absolute path of the installed package folder. */
export const LIBSIGNAL_PKG_DIR = join(LIBSIGNAL_DIR, 'node_modules', '@signalapp', 'libsignal-client');

/** Absolute path of the package's ESM entry point. */
export const LIBSIGNAL_ENTRY = join(LIBSIGNAL_PKG_DIR, 'dist', 'index.js');

export function libsignalInstalled(): boolean {
  return existsSync(join(LIBSIGNAL_PKG_DIR, 'package.json')) && existsSync(LIBSIGNAL_ENTRY);
}

// When this runs under `npm run bench` at the repo root, npm exports its own
// configuration as npm_config_* variables; a few of them would make the nested
// `npm install` act on the root project instead of bench/libsignal.
const NPM_ENV_TO_DROP = new Set([
  'npm_config_local_prefix',
  'npm_config_workspace',
  'npm_config_workspaces',
  'npm_config_include_workspace_root',
  'npm_config_global',
  'npm_config_location',
  'npm_config_dry_run',
  'npm_config_package_lock_only',
]);

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!NPM_ENV_TO_DROP.has(k.toLowerCase())) env[k] = v;
  }
  return env;
}

function runNpmInstall(): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn('npm', ['install', '--no-audit', '--no-fund'], {
      cwd: LIBSIGNAL_DIR,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32',
    });
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > 64_000) output = output.slice(-32_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (err) => resolve({ ok: false, output: `${output}\n${String(err)}` }));
    child.on('close', (code, signal) =>
      resolve({ ok: code === 0, output: code === 0 ? output : `${output}\n(npm exited with ${signal ?? `code ${code}`})` }),
    );
  });
}

/**
 * Makes sure @signalapp/libsignal-client is installed under bench/libsignal.
 * Returns true when it is usable, false (after printing why to stderr) when it
 * could not be installed, so the caller can report "libsignal: unavailable".
 */
export async function ensureLibsignal(): Promise<boolean> {
  if (libsignalInstalled()) return true;
  process.stderr.write('libsignal: installing @signalapp/libsignal-client into bench/libsignal (benchmark only, ~150 MB)...\n');
  const started = performance.now();
  const { ok, output } = await runNpmInstall();
  if (ok && libsignalInstalled()) {
    process.stderr.write(`libsignal: installed in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    return true;
  }
  const tail = output.trim().split('\n').slice(-8).join('\n');
  process.stderr.write(
    `libsignal: could not install @signalapp/libsignal-client in ${LIBSIGNAL_DIR}` +
      (ok ? ' (npm succeeded but the package is missing)' : '') +
      (tail ? `\n${tail.replace(/^/gm, '  | ')}` : '') +
      '\n',
  );
  return false;
}
