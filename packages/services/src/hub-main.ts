/**
 * `npm run hub` (later `umbra hub` / `npm start`): issuer, SSA and two RSAs on loopback.
 * Options: --data <dir> (default ./data), --port <base> (default 7700; 0 = any free ports).
 */
import { startHub, type Hub } from './hub.ts';
import { PrivateDirError } from './private-files.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv.includes('--help')) {
  console.log('usage: npm run hub -- [--data DIR] [--port BASE]\n  issuer = BASE, SSA = BASE+1, RSAs = BASE+2 and BASE+3 (127.0.0.1)');
  process.exit(0);
}
let hub: Hub;
try {
  hub = await startHub({ dataDir: arg('data') ?? 'data', port: Number(arg('port') ?? 7700) });
} catch (e) {
  if (!(e instanceof PrivateDirError)) throw e;
  console.error(`umbra hub: ${e.message}`);
  process.exit(1);
}
console.log(`umbra hub (data in ${hub.dataDir})`);
console.log(`  issuer  ${hub.issuer}`);
console.log(`  ssa     ${hub.ssa}`);
console.log(`  rsa     ${hub.rsas[0]}`);
console.log(`  rsa     ${hub.rsas[1]}`);
console.log(`  dir     ${hub.directory}`);
const stop = () => void hub.close().finally(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
