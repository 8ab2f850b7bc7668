/**
 * Runs one RSA as its own process (the hub's child mode, crash tests, the load test).
 * Usage: node --import tsx rsa-main.ts '<json config>'   (RsaOptions, with tokenKeys as base64url)
 * Prints "READY <url>" on stdout once listening.
 */
import { fromB64u } from './bytes.ts';
import { startRsa, type RsaOptions } from './rsa.ts';

const raw = JSON.parse(process.argv[2] ?? '{}') as Omit<RsaOptions, 'tokenKeys'> & { tokenKeys: string[] };
const rsa = await startRsa({ ...raw, tokenKeys: raw.tokenKeys.map((k) => fromB64u(k)!) });
process.stdout.write(`READY ${rsa.url}\n`);
const stop = () => void rsa.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
