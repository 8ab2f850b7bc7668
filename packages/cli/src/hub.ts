/** `umbra hub`: the Communicator services on loopback, until Ctrl-C. */
import { startHub } from '@umbra/services';
import { CliError } from './errors.ts';

export async function hub(opts: { data: string; port: string }): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65532) throw new CliError('--port must be 0..65532');
  const h = await startHub({ dataDir: opts.data, port });
  console.log(`umbra hub — data in ${h.dataDir}`);
  console.log(`  issuer            ${h.issuer}`);
  console.log(`  sending service   ${h.ssa}`);
  h.rsas.forEach((url) => console.log(`  receiving service ${url}`));
  console.log(`  directory         ${h.directory}`);
  console.log(`\nClients: umbra --hub ${h.issuer} init --name <name>   (Ctrl-C stops the hub)`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await h.close();
}
