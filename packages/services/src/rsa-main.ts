/**
 * Runs one RSA as its own process (the hub's child mode, crash tests, the load test).
 * Usage: node --import tsx rsa-main.ts '<json config>'   (RsaOptions, with tokenKeys and trustedSsaKeys as base64url)
 * Prints "READY <url>" on stdout once listening.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { fromB64u } from './bytes.ts';
import { startRsa, type RsaOptions } from './rsa.ts';
import { allowOrigins } from './cors.ts';

// UMBRA_CPU_PROFILE=<dir>: write a V8 CPU profile there on a graceful stop (the load test uses it).
const profileDir = process.env.UMBRA_CPU_PROFILE;
let session: Session | null = null;
if (profileDir) {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
}

const { corsOrigins, ...raw } = JSON.parse(process.argv[2] ?? '{}') as Omit<RsaOptions, 'tokenKeys' | 'trustedSsaKeys'> & {
  tokenKeys: string[];
  trustedSsaKeys?: string[];
  corsOrigins?: string[];
};
const rsa = await startRsa({
  ...raw,
  tokenKeys: raw.tokenKeys.map((k) => fromB64u(k)!),
  trustedSsaKeys: (raw.trustedSsaKeys ?? []).map((k) => fromB64u(k)!),
});
allowOrigins(rsa.app, corsOrigins ?? []);
process.stdout.write(`READY ${rsa.url}\n`);
const stop = () =>
  void (async () => {
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(join(profileDir!, `rsa-${process.pid}.cpuprofile`), JSON.stringify(profile));
    }
    await rsa.close();
  })().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
