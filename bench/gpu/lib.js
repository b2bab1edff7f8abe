'use strict';
// Shared by the GPU benchmarks (bench/gpu/*.js, run one process each by bench/gpu/run.sh): the device and whether this is
// the dry run (SIMCLR_GPU_DRY_RUN=1: the CPU and tiny sizes), the PyTorch peers (bench/gpu/peers/*.py, each a process
// of the Python that holds the peer's torch), GPU utilisation sampling, and the results file every benchmark appends one
// JSON line to (SIMCLR_GPU_RESULTS; bench/gpu/summarize.js turns it into results.json and summary.md).
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { spawn, spawnSync } = require('child_process');
const { cuda } = require('../../dist');

const DRY = process.env.SIMCLR_GPU_DRY_RUN === '1';
const DEVICE = process.env.SIMCLR_BENCH_DEVICE || (DRY ? 'cpu' : 'cuda');
const ON_CUDA = DEVICE.startsWith('cuda');
const PYTHON = process.env.PYTHON || 'python3';

/** Appends one result to the run's results file and prints it. */
function record(bench, result) {
  const line = JSON.stringify({ bench, device: DEVICE, dry: DRY, ...result });
  if (process.env.SIMCLR_GPU_RESULTS) fs.appendFileSync(process.env.SIMCLR_GPU_RESULTS, line + '\n');
  console.log(`result ${line}`);
}

/** Waits for the device's queued work (GPU work is asynchronous; a host clock read needs this first). */
function sync() {
  if (ON_CUDA) cuda.synchronize(DEVICE);
}

/** Our process's peak CUDA memory (tensors) since the last reset, in bytes; null on the CPU. */
function peakBytes() {
  return ON_CUDA ? cuda.memoryStats(DEVICE).peakAllocated : null;
}

function allocatedBytes() {
  return ON_CUDA ? cuda.memoryStats(DEVICE).allocated : null;
}

function resetPeak() {
  if (ON_CUDA) cuda.resetPeakMemoryStats(DEVICE);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * A PyTorch peer kept alive for a whole benchmark: bench/gpu/peers/<script> with one JSON argument. It prints one JSON
 * line when ready, then answers each JSON request line with one JSON line.
 */
class Peer {
  constructor(script, args) {
    this.child = spawn(PYTHON, [path.join(__dirname, 'peers', script), JSON.stringify({ ...args, device: DEVICE, dry: DRY })],
      { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async next() {
    const { value, done } = await this.lines.next();
    if (done) throw new Error('the PyTorch peer exited early (its error is above)');
    return JSON.parse(value);
  }

  async ask(request) {
    this.child.stdin.write(JSON.stringify(request) + '\n');
    return this.next();
  }

  close() {
    this.child.stdin.end();
  }
}

/**
 * Samples the GPU's utilisation (the share of time a kernel was running, as nvidia-smi reports it) every 100 ms until
 * stop() is called; stop() returns the mean in [0, 1], or null without nvidia-smi (the dry run).
 */
function gpuSampler() {
  if (!ON_CUDA || spawnSync('nvidia-smi', ['-L'], { stdio: 'ignore' }).status !== 0) return { stop: async () => null };
  const index = DEVICE.includes(':') ? DEVICE.split(':')[1] : '0';
  const child = spawn('nvidia-smi', ['-i', index, '--query-gpu=utilization.gpu', '--format=csv,noheader,nounits', '-lms', '100'],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  const samples = [];
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    const v = Number(l.trim());
    if (Number.isFinite(v)) samples.push(v / 100);
  });
  return {
    stop: async () => {
      child.kill();
      await new Promise((resolve) => child.once('exit', resolve));
      // The first samples can reach back before the timed region: drop one.
      const kept = samples.slice(1);
      return kept.length ? kept.reduce((a, b) => a + b, 0) / kept.length : null;
    },
  };
}

module.exports = { DRY, DEVICE, ON_CUDA, PYTHON, record, sync, peakBytes, allocatedBytes, resetPeak, median, seconds, Peer, gpuSampler };
