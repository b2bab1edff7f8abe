'use strict';
// Copy-in / copy-out bandwidth and per-call overhead of a trivial op, simclr vs PyTorch in the same run.
// Usage: npm run bench -- tensor-io   (after npm test or npm start has built dist/)
const { Tensor, getNumThreads } = require('../dist');
const { runPeer, timeIt, printTable, fmt } = require('./common');

async function main() {
  const elements = 16 * 1024 * 1024; // 64 MiB of float32
  const calls = 20000;
  const data = new Float32Array(elements).map((_, i) => i % 251);
  const t = Tensor.fromTypedArray(data, [elements]);
  const copyIn = await timeIt(() => Tensor.fromTypedArray(data, [elements]).dispose(), { repeats: 7 });
  const copyOut = await timeIt(() => t.toTypedArray(), { repeats: 7 });
  const trivial = await timeIt(() => {
    for (let i = 0; i < calls; i++) Tensor.zeros([1]).dispose();
  }, { repeats: 5 });
  const ours = { copyIn, copyOut, trivial: trivial / calls };
  const peer = runPeer('tensor_io.py', { elements, calls, threads: getNumThreads() });
  const gbs = (s) => (elements * 4) / s / 1e9;
  console.log(`tensor-io: ${elements * 4 / 2 ** 20} MiB float32, ${calls} trivial calls, threads ${getNumThreads()}, peer torch ${peer.version}`);
  printTable([
    { measure: 'copy in (GB/s)', simclr: fmt(gbs(ours.copyIn)), pytorch: fmt(gbs(peer.copyIn)), ratio: fmt(peer.copyIn / ours.copyIn) },
    { measure: 'copy out (GB/s)', simclr: fmt(gbs(ours.copyOut)), pytorch: fmt(gbs(peer.copyOut)), ratio: fmt(peer.copyOut / ours.copyOut) },
    { measure: 'zeros([1]) call (us)', simclr: fmt(ours.trivial * 1e6), pytorch: fmt(peer.trivial * 1e6), ratio: fmt(peer.trivial / ours.trivial) },
  ]);
  console.log('ratio = PyTorch time / simclr time (> 1: simclr is faster)');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
