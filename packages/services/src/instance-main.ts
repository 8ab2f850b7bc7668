/**
 * Runs one service instance as its own process (the instance tests; `umbra serve` is the
 * operator's way to the same startInstance).
 * Usage: node --import tsx instance-main.ts '<json InstanceConfig>'
 * Prints "READY <url>" on stdout once listening; SIGTERM/SIGINT stop it gracefully.
 */
import { InstanceConfigError, startInstance, type InstanceConfig } from './instance.ts';

let config: InstanceConfig;
try {
  config = JSON.parse(process.argv[2] ?? '') as InstanceConfig;
} catch {
  console.error('instance-main: the argument must be a JSON InstanceConfig');
  process.exit(2);
}
try {
  const instance = await startInstance(config);
  process.stdout.write(`READY ${instance.url}\n`);
  const stop = () => void instance.close().finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (e) {
  console.error(`instance-main (${config.role}): ${e instanceof InstanceConfigError ? e.message : String((e as Error)?.stack ?? e)}`);
  process.exit(1);
}
