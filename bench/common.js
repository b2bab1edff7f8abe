'use strict';
// Helpers shared by the benchmarks: timing, the Python peer, and the table every benchmark prints.
const { execFileSync, spawn } = require('child_process');
const readline = require('readline');
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

/**
 * Runs bench/peers/<script> with JSON arguments on its stdin (they may hold every image index of a dataset: more than
 * one command-line argument may carry) and returns its JSON output (the last stdout line).
 */
function runPeer(script, args) {
  const out = execFileSync(peerPython(), [path.join(__dirname, 'peers', script)], {
    input: JSON.stringify(args), encoding: 'utf8', stdio: ['pipe', 'pipe', 'inherit'], maxBuffer: 1 << 26,
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

/**
 * A PyTorch peer kept alive for a whole configuration (bench/peers/<script> in server mode): it builds its model once,
 * then times `n` iterations each time it is asked, so ours and the peer can alternate without paying process start-up
 * or warm-up inside a pair.
 */
class PeerServer {
  constructor(script, args) {
    this.child = spawn(peerPython(), [path.join(__dirname, 'peers', script), JSON.stringify(args)], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async next() {
    const { value, done } = await this.lines.next();
    if (done) throw new Error('the PyTorch peer exited early (its error is above)');
    return JSON.parse(value);
  }

  /** The peer's description line (versions, settings), printed once it has built its model. */
  ready() {
    return this.next();
  }

  /** Median seconds of `n` timed iterations. */
  async time(n) {
    this.child.stdin.write(`${n}\n`);
    return (await this.next()).seconds;
  }

  close() {
    this.child.stdin.end();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Alternates ours and the peer in `pairs` pairs (ours first, then the peer, each timing `iterations` runs and taking
 * their median), so that load changes on a shared machine hit both sides alike. Returns the per-pair ratios
 * peer / ours (> 1: ours is faster), their median with min and max, and the median seconds of each side.
 */
async function alternate({ ours, peer, pairs = 7, iterations = 3 }) {
  const mine = [];
  const theirs = [];
  for (let i = 0; i < pairs; i++) {
    mine.push(await ours(iterations));
    theirs.push(await peer(iterations));
  }
  const ratios = mine.map((m, i) => theirs[i] / m);
  return { ours: median(mine), peer: median(theirs), ratio: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), ratios };
}

/** Median seconds of `n` calls of the async `fn`. */
async function medianSeconds(fn, n) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return median(times);
}

/** `uptime`'s load averages, for the record printed with every benchmark. */
function loadAverage() {
  return require('os').loadavg().map((l) => l.toFixed(2)).join(', ');
}

/** "1.02x (0.95-1.10)": the median ratio of the pairs with their spread. */
const ratioText = (r) => `${fmt(r.ratio)}x (${fmt(r.min)}-${fmt(r.max)})`;

module.exports = { peerPython, runPeer, timeIt, printTable, fmt, PeerServer, alternate, medianSeconds, median, loadAverage, ratioText };
