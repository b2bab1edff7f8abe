'use strict';
// Helpers shared by the benchmarks: timing, the Python peer, and the table every benchmark prints.
const { execFileSync } = require('child_process');
const path = require('path');

/** The Python that runs the PyTorch peer: $PYTHON, else Debian's python3 (python3-torch), else python3. */
function peerPython() {
  if (process.env.PYTHON) return process.env.PYTHON;
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(candidate, ['-c', 'import torch'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('no Python with torch found for the PyTorch peer: set PYTHON=/path/to/python');
}

/** Runs bench/peers/<script> with JSON arguments and returns its JSON output (the last stdout line). */
function runPeer(script, args) {
  const out = execFileSync(peerPython(), [path.join(__dirname, 'peers', script), JSON.stringify(args)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

/** Median seconds of `repeats` runs of fn (sync or async), after `warmup` runs. */
async function timeIt(fn, { repeats = 5, warmup = 1 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Prints rows as an aligned table. */
function printTable(rows) {
  const keys = Object.keys(rows[0]);
  const cells = [keys, ...rows.map((r) => keys.map((k) => String(r[k])))];
  const widths = keys.map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  for (const c of cells) console.log(c.map((v, i) => v.padEnd(widths[i])).join('  '));
}

const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));

module.exports = { peerPython, runPeer, timeIt, printTable, fmt };
