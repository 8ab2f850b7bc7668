#!/usr/bin/env node
/**
 * Start-up time of `umbra` commands: the median wall time of N runs of each command line, as a
 * user runs it (node packages/cli/bin/umbra.js …, a fresh process each time).
 *   node packages/cli/bench/startup.mjs [--runs 7] --data DIR -- list -- send 1 hi --wait 0
 * UMBRA_PASSPHRASE must be set (or an agent running for DIR).
 */
/* global process, console */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'umbra.js');
const argv = process.argv.slice(2);
let runs = 7;
const common = [];
const lines = [];
let current = null;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--') {
    current = [];
    lines.push(current);
  } else if (current !== null) current.push(a);
  else if (a === '--runs') runs = Number(argv[++i]);
  else common.push(a);
}
if (lines.length === 0) lines.push(['list']);

for (const line of lines) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [BIN, ...common, ...line], { encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) {
      console.error(`umbra ${line.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
      process.exit(1);
    }
    times.push(ms);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(`umbra ${line.join(' ')}: median ${median.toFixed(0)} ms over ${runs} runs (min ${times[0].toFixed(0)}, max ${times[times.length - 1].toFixed(0)})`);
}
