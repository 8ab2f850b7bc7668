/**
 * `umbra serve <role>`: one instance of one service role (issuer, ssa, rsa, directory) on a
 * database, for operators who run N instances of a role on one PostgreSQL (docs/SERVICES.md
 * "Instances"). `umbra serve keygen --key-file F` provisions a key file. `umbra hub` stays the
 * single-machine default.
 */
import type { Command } from 'commander';
import { generateKeyFile, InstanceConfigError, ROLES, startInstance, b64u, type InstanceConfig, type Role } from '@umbra/services';
import { CliError } from './errors.ts';

interface ServeOptions {
  db?: string;
  host: string;
  port: string;
  keyFile?: string;
  sealKeyFile?: string;
  origin?: string;
  issuer?: string;
  issuerKey?: string;
  trustSsa: string[];
  shard: string[];
  publicUrl?: string;
  allowLoopback?: boolean;
  namespace?: string;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function serve(role: string, o: ServeOptions): Promise<void> {
  if (role === 'keygen') {
    if (!o.keyFile) throw new CliError('usage', 'umbra serve keygen needs --key-file <file> (where to write the new key)');
    const publicKey = rethrow(() => generateKeyFile(o.keyFile!));
    console.log(`wrote ${o.keyFile} (0600); its public key: ${publicKey}`);
    return;
  }
  if (!(ROLES as readonly string[]).includes(role)) throw new CliError('usage', `unknown role "${role}": one of ${ROLES.join(', ')}, or keygen`);
  if (!o.db) throw new CliError('usage', '--db is required (a SQLite file or a postgres:// URL)');
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError('usage', '--port must be 0..65535');
  const config: InstanceConfig = {
    role: role as Role,
    db: o.db,
    host: o.host,
    port,
    ...(o.keyFile ? { keyFile: o.keyFile } : {}),
    ...(o.sealKeyFile ? { sealKeyFile: o.sealKeyFile } : {}),
    ...(o.origin ? { origin: o.origin } : {}),
    ...(o.issuer ? { issuer: o.issuer } : {}),
    ...(o.issuerKey ? { issuerKey: o.issuerKey } : {}),
    ...(o.trustSsa.length > 0 ? { trustedSsaKeys: o.trustSsa } : {}),
    ...(o.shard.length > 0 ? { shards: o.shard } : {}),
    ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
    ...(o.allowLoopback ? { allowLoopback: true } : {}),
    ...(o.namespace ? { namespace: o.namespace } : {}),
  };
  const instance = await startInstance(config).catch((e: unknown) => {
    if (e instanceof InstanceConfigError) throw new CliError('usage', e.message);
    throw e;
  });
  console.log(`umbra serve ${role}: ${instance.url} (service key ${b64u(instance.serviceKey)})`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await instance.close();
}

function rethrow<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InstanceConfigError) throw new CliError('usage', e.message);
    throw e;
  }
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run one instance of a service role on a database (N instances of a role may share one PostgreSQL)')
    .argument('<role>', `${ROLES.join(' | ')} | keygen`)
    .option('--db <location>', 'the role\'s database: a SQLite file (one instance) or a postgres:// URL (shared by the instances)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0 = any free one)', '0')
    .option('--key-file <file>', "the role's identity key (32 bytes, mode 0600): the same file for every instance; with keygen, where to write a new one")
    .option('--seal-key-file <file>', 'ssa: the key that seals queued addresses (the same file for every SSA instance)')
    .option('--origin <host>', "the role's public name, the same on every instance (issuer: its issuer name; others: their token origin)")
    .option('--issuer <url>', "ssa, rsa, directory: the issuer whose token keys they accept")
    .option('--issuer-key <base64url>', "pin the issuer's service key")
    .option('--trust-ssa <base64url>', 'rsa: an SSA service key whose deliveries are accepted unpaid (repeatable)', collect, [])
    .option('--shard <name=url>', 'rsa: a PostgreSQL database holding a share of the mailboxes (repeatable); --db is then the control database', collect, [])
    .option('--public-url <url>', 'ssa: base URL for blob links')
    .option('--allow-loopback', 'ssa: allow loopback RSAs over plain http (local tests only)')
    .option('--namespace <ns>', 'directory: the namespace of its names (fixed at the first start)')
    .addHelpText(
      'after',
      `
Example, two RSA instances of one service on one PostgreSQL:
  umbra serve keygen --key-file rsa.key
  umbra serve rsa --db postgres://umbra@db/rsa --port 7702 --key-file rsa.key --origin rsa.example.org \\
                  --issuer https://issuer.example.org --trust-ssa <the SSA's public key>
  (the same again on another machine or port)`,
    )
    .action((role: string, o: ServeOptions) => serve(role, o));
}
