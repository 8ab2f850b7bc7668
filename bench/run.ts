/**
 * `npm run bench`: our protocol beside libsignal (installed on demand, AGPL, benchmark only),
 * classify throughput at 10 and 10,000 conversations, and the node:crypto primitives the
 * ratchet is made of. Prints one table; `--json` prints the raw figures.
 */
import { nodeProvider } from '../packages/client/src/crypto/node-provider.ts';
import { nobleProvider } from '../packages/protocol/src/index.ts';
import { benchClassify, benchProtocol } from './protocol.ts';
import { ensureLibsignal } from './libsignal/ensure.ts';
import { benchLibsignal } from './libsignal/libsignal-bench.ts';
import { measurePrimitives } from './crypto-primitives.ts';

const json = process.argv.includes('--json');
const log = (s: string) => {
  if (!json) console.log(s);
};
const progress = (s: string) => process.stderr.write(`… ${s}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

progress('libsignal (installing on first use)');
const libsignal = (await ensureLibsignal()) ? await benchLibsignal({ messages: 2000, runs: 5 }) : null;
progress('umbra, node:crypto provider');
const ours = await benchProtocol(nodeProvider, 2000, 5);
progress('umbra, noble provider (browser path)');
const oursNoble = await benchProtocol(nobleProvider, 300, 3);
progress('classify with 10 conversations');
const c10 = await benchClassify(nodeProvider, 10);
progress('classify with 10,000 conversations');
const c10k = await benchClassify(nodeProvider, 10_000);
progress('primitives');
const primitives = await measurePrimitives();

const ratio = (a: number, b: number | undefined) => (b === undefined ? 'n/a' : `${(a / b).toFixed(2)}×`);
log('');
log('100 B messages, encrypt + decrypt per message (median of 5 runs), same run:');
log(`                         umbra (node)   umbra (noble)   libsignal   umbra/libsignal  target`);
log(`  one way   msgs/s       ${fmt(ours.oneWayMsgsPerSec).padStart(10)}   ${fmt(oursNoble.oneWayMsgsPerSec).padStart(12)}   ${(libsignal ? fmt(libsignal.oneWayMsgsPerSec) : 'n/a').padStart(9)}   ${ratio(ours.oneWayMsgsPerSec, libsignal?.oneWayMsgsPerSec).padStart(14)}  ≥ 2×`);
log(`  ping-pong msgs/s       ${fmt(ours.pingPongMsgsPerSec).padStart(10)}   ${fmt(oursNoble.pingPongMsgsPerSec).padStart(12)}   ${(libsignal ? fmt(libsignal.pingPongMsgsPerSec) : 'n/a').padStart(9)}   ${ratio(ours.pingPongMsgsPerSec, libsignal?.pingPongMsgsPerSec).padStart(14)}  ≥ 1.2×`);
log(`  session setup ms       ${ours.sessionSetupMs.toFixed(2).padStart(10)}   ${oursNoble.sessionSetupMs.toFixed(2).padStart(12)}   ${(libsignal ? libsignal.sessionSetupMs.toFixed(2) : 'n/a').padStart(9)}`);
log(`  first message bytes    ${String(ours.firstMessageBytes).padStart(10)}   ${''.padStart(12)}   ${String(libsignal?.prekeyMessageBytes ?? 'n/a').padStart(9)}`);
log(`  message bytes          ${String(ours.messageBytes).padStart(10)}   ${''.padStart(12)}   ${String(libsignal?.messageBytes ?? 'n/a').padStart(9)}   (ours: whole envelope, padded to 256 B)`);
log('');
log('classify (+ commit) throughput, one peer streaming to a receiver with N conversations:');
log(`  N = 10        ${fmt(c10.msgsPerSec).padStart(8)} msgs/s   hint entries ${fmt(c10.hintEntries)}`);
log(`  N = 10,000    ${fmt(c10k.msgsPerSec).padStart(8)} msgs/s   hint entries ${fmt(c10k.hintEntries)}   ratio ${(c10k.msgsPerSec / c10.msgsPerSec).toFixed(2)} (target ≥ 0.80)`);
log(`  memory per conversation (whole engine: ratchet state + hint table) ≈ ${fmt(c10k.heapBytesPerConversation)} B`);
log(`  hourly hint-window rollover (tick): ${c10.hourlyTickMs.toFixed(1)} ms at N = 10, ${fmt(c10k.hourlyTickMs)} ms at N = 10,000`);
log('');
log('primitives the ratchet calls (ops/s):            node:crypto      noble');
for (const [name, v] of Object.entries(primitives)) log(`  ${name.padEnd(44)} ${fmt(v.node).padStart(10)} ${fmt(v.noble).padStart(10)}`);
log('');
log('A one-way message costs: 2 HMAC (chain) + 2 AEAD seal + 2 AEAD open (header, body) + 1 HMAC (hint) + protobuf;');
log('a ping-pong message adds one X25519 keygen and two X25519 DH (DH ratchet) and two HKDF.');
if (json) console.log(JSON.stringify({ libsignal, ours, oursNoble, classify: [c10, c10k], primitives }, null, 2));
