/** `npm run crashtest`: the crash-safety harness with many kills (default 200). */
import { runCrashTest } from './harness.ts';

const kills = Number(process.argv[2] ?? 200);
const seed = Number(process.argv[3] ?? Date.now() % 100_000);
console.log(`crash test: ${kills} SIGKILLs, seed ${seed}`);
const r = await runCrashTest({ kills, seed, log: (l) => console.log(`  ${l}`) });
console.log(
  `kills ${r.kills} (${r.killsBeforeReady} during startup); alice sent ${r.aliceSent}, bob sent ${r.bobSent}; ` +
    `lost ${r.lost}, duplicated ${r.duplicated}, unacknowledged ${r.unacked}, numbering gaps ${r.gaps}, undecryptable ${r.undecryptable}; ${(r.ms / 1000).toFixed(1)} s`,
);
const ok = r.lost === 0 && r.duplicated === 0 && r.unacked === 0 && r.gaps === 0 && r.undecryptable === 0;
console.log(ok ? 'PASS' : 'FAIL');
process.exit(ok ? 0 : 1);
