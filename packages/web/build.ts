/**
 * Builds the web app into packages/web/dist: esbuild bundles src/main.ts (Preact and the SDK's
 * browser entry) into one minified ES module, next to index.html and app.css.
 * `node --import tsx packages/web/build.ts` builds and prints the sizes; `umbra hub` calls
 * `buildWebApp()` before serving, so dist is always current.
 */
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
export const WEB_DIST = join(here, 'dist');

export interface WebBuild {
  readonly outDir: string;
  /** app.js bytes, minified. */
  readonly scriptBytes: number;
  /** app.js + index.html + app.css, gzip -9 each. */
  readonly gzipBytes: number;
  readonly ms: number;
}

export async function buildWebApp(options: { outDir?: string } = {}): Promise<WebBuild> {
  const started = performance.now();
  const outDir = options.outDir ?? WEB_DIST;
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(here, 'src/main.ts')],
    outfile: join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    legalComments: 'eof',
    logLevel: 'silent',
  });
  copyFileSync(join(here, 'src/index.html'), join(outDir, 'index.html'));
  copyFileSync(join(here, 'src/app.css'), join(outDir, 'app.css'));
  const files = ['app.js', 'index.html', 'app.css'].map((f) => join(outDir, f));
  const gzipBytes = files.reduce((n, f) => n + gzipSync(readFileSync(f), { level: 9 }).length, 0);
  return { outDir, scriptBytes: statSync(files[0]!).size, gzipBytes, ms: performance.now() - started };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const b = await buildWebApp();
  console.log(`web app built in ${b.ms.toFixed(0)} ms → ${b.outDir}`);
  console.log(`  app.js ${(b.scriptBytes / 1024).toFixed(1)} KiB minified; all files ${(b.gzipBytes / 1024).toFixed(1)} KiB gzipped`);
}
