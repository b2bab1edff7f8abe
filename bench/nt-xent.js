'use strict';
// NT-Xent forward+backward: simclr's fused op against two PyTorch forms (bench/peers/nt_xent.py), d = 128.
// Every case runs in a fresh process, so the peak RSS (VmHWM) it reports is that case's alone, for simclr and PyTorch
// alike. Both use the same threads (2 unless BENCH_THREADS says otherwise) and the same z: torch.manual_seed(0) then
// randn, which LibTorch reproduces, so the three losses agree.
// Usage: npm run bench -- nt-xent [N ...]      (default N = 256 1024 4096 16384 32768; build dist/ first)
const { execFileSync } = require('child_process');
const path = require('path');
const { peerPython, runPeer, printTable, fmt } = require('./common');

const D = 128;
const TEMPERATURE = 0.5;
const THREADS = Number(process.env.BENCH_THREADS) || 2;
// Peak RSS of the lean form measured here: ~16.5 bytes per similarity entry ((2N)² of them), i.e. 1.1 GB at N = 4096.
const LEAN_BYTES_PER_ENTRY = 16.5;
const PEER_MEMORY_LIMIT = 8e9; // the machine is shared: do not start a peer expected to need more
const STHALLES_MAX_N = 4096; // 38 s at N = 4096 and quadratic: N = 16384 would take ~10 minutes

function rssKiB(field) {
  return Number(require('fs').readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${field}:\\s+(\\d+)`))[1]);
}

/** One simclr case, run in this (fresh) process; prints the same JSON as the peer. */
async function childCase({ n, d, temperature, threads, warmup, repeats }) {
  const { Tensor, ntXent, manualSeed, setNumThreads } = require('../dist');
  setNumThreads(threads);
  manualSeed(0);
  const z = Tensor.randn([2 * n, d]);
  const baseline = rssKiB('VmRSS');
  const step = async () => {
    const { loss, grad } = await ntXent(z, { temperature });
    grad.dispose();
    return loss;
  };
  for (let i = 0; i < warmup; i++) await step();
  const times = [];
  const cpuTimes = [];
  let loss;
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    const cpuStart = process.cpuUsage();
    loss = await step();
    const cpu = process.cpuUsage(cpuStart);
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
    cpuTimes.push((cpu.user + cpu.system) / 1e6);
  }
  const median = (list) => list.sort((a, b) => a - b)[Math.floor(list.length / 2)];
  process.stdout.write(JSON.stringify({ seconds: median(times), cpuSeconds: median(cpuTimes), loss, peakKiB: rssKiB('VmHWM'),
    baselineKiB: baseline }) + '\n');
}

function runOurs(args) {
  const out = execFileSync(process.execPath, [__filename, '--case', JSON.stringify(args)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').pop());
}

/** Why a peer form is not run at this N, or undefined when it is. */
function skipReason(form, n) {
  const entries = (2 * n) ** 2;
  if (form === 'sthalles' && n > STHALLES_MAX_N) return `skipped: ~${Math.round(38 * (n / 4096) ** 2 / 60)} min expected`;
  if (entries * LEAN_BYTES_PER_ENTRY > PEER_MEMORY_LIMIT) return `skipped: needs ~${fmt(entries * LEAN_BYTES_PER_ENTRY / 1e9, 0)} GB`;
  return undefined;
}

async function main() {
  const sizes = process.argv.slice(3).map(Number).filter((n) => Number.isInteger(n) && n >= 2);
  const ns = sizes.length ? sizes : [256, 1024, 4096, 16384, 32768];
  const mib = (kib) => fmt(kib / 1024, 0);
  let version = '';
  const times = [];
  const memory = [];
  for (const n of ns) {
    // Up to N = 4096: the median of 3 runs after a warm-up run (a training loop calls the loss again and again);
    // sthalles' form, at 35 s a run there, once after the warm-up. Larger N: one cold run.
    const args = { n, d: D, temperature: TEMPERATURE, threads: THREADS, warmup: n <= 4096 ? 1 : 0, repeats: n <= 4096 ? 3 : 1 };
    const ours = runOurs(args);
    const peers = {};
    for (const form of ['lean', 'sthalles']) {
      const reason = skipReason(form, n);
      const repeats = form === 'sthalles' && n > 1024 ? 1 : args.repeats;
      peers[form] = reason ? { reason } : runPeer('nt_xent.py', { ...args, repeats, form });
      version = peers[form].version || version;
      process.stderr.write(`N=${n} ${form}: ${reason || `${fmt(peers[form].seconds, 3)} s`}\n`);
    }
    const seconds = (r) => (r.reason ? r.reason : fmt(r.seconds, 3));
    const ratio = (r) => (r.reason ? '-' : fmt(r.seconds / ours.seconds, 1));
    const peak = (r) => (r.reason ? '-' : mib(r.peakKiB));
    const growth = (r) => (r.reason ? '-' : mib(r.peakKiB - r.baselineKiB));
    times.push({
      N: n, rows: 2 * n, 'simclr s': fmt(ours.seconds, 3), 'lean s': seconds(peers.lean), 'sthalles s': seconds(peers.sthalles),
      'lean/simclr': ratio(peers.lean), 'sthalles/simclr': ratio(peers.sthalles),
      'cpu s simclr / lean': `${fmt(ours.cpuSeconds, 3)} / ${peers.lean.reason ? '-' : fmt(peers.lean.cpuSeconds, 3)}`,
      'cpu lean/simclr': peers.lean.reason ? '-' : fmt(peers.lean.cpuSeconds / ours.cpuSeconds, 1),
      'loss simclr / lean': `${fmt(ours.loss, 5)} / ${peers.lean.reason ? '-' : fmt(peers.lean.loss, 5)}`,
    });
    memory.push({
      N: n, 'simclr peak MiB': mib(ours.peakKiB), 'lean peak MiB': peak(peers.lean), 'sthalles peak MiB': peak(peers.sthalles),
      'simclr/lean peak': peers.lean.reason ? '-' : fmt(ours.peakKiB / peers.lean.peakKiB, 2),
      'simclr op MiB': mib(ours.peakKiB - ours.baselineKiB), 'lean op MiB': growth(peers.lean), 'sthalles op MiB': growth(peers.sthalles),
    });
  }
  console.log(`nt-xent: forward+backward, 2N x ${D} float32, temperature ${TEMPERATURE}, threads ${THREADS}, peer torch ${version || '(not run)'} (${peerPython()})`);
  printTable(times);
  console.log('');
  printTable(memory);
  console.log('ratio = PyTorch time / simclr time (> 1: simclr is faster); cpu = process CPU seconds (all threads) per');
  console.log('forward+backward, steadier than wall time on a shared machine. peak = VmHWM of the case\'s process;');
  console.log('op = peak minus the RSS after loading the library and creating z (what the loss itself added).');
}

if (process.argv[2] === '--case') {
  childCase(JSON.parse(process.argv[3])).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
