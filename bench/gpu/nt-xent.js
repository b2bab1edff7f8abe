'use strict';
// NT-Xent forward + backward on the GPU, float32, d = 128, τ = 0.2: simclr's fused tiled op against PyTorch's lean form
// (normalize, z @ z.T / τ, mask the diagonal, cross_entropy, backward) on the same GPU. Issue 13 targets: at N = 16384
// images (32768 rows) >= 1.0x the lean form's speed with <= 1/8 of its peak memory; N = 131072 (262144 rows) completes
// (the lean form would need a 256 GiB similarity matrix, so only ours runs there). Peak memory is what each side
// allocated beyond z itself (CUDA allocator peaks).
const { Tensor, manualSeed, ntXent } = require('../../dist');
const { DRY, DEVICE, record, sync, resetPeak, peakBytes, allocatedBytes, median, seconds, Peer } = require('./lib');

const D = 128;
const TEMPERATURE = 0.2;
const CASES = DRY
  ? [{ n: 256, repeats: 3, peer: true }, { n: 2048, repeats: 1, peer: false }]
  : [{ n: 16384, repeats: 7, peer: true }, { n: 131072, repeats: 2, peer: false }];

const bytesText = (b) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(0)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`);

async function ours(n, repeats) {
  manualSeed(0);
  const z = Tensor.randn([2 * n, D], { device: DEVICE });
  (await ntXent(z, { temperature: TEMPERATURE })).grad.dispose(); // warm-up (allocator, kernels)
  sync();
  const base = allocatedBytes();
  resetPeak();
  const times = [];
  let loss;
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    const out = await ntXent(z, { temperature: TEMPERATURE }); // the loss is read back: the op has finished
    times.push(seconds(start));
    loss = out.loss;
    out.grad.dispose();
  }
  const peak = peakBytes();
  z.dispose();
  return { seconds: median(times), loss, peakBytes: peak === null ? null : peak - base };
}

async function main() {
  for (const c of CASES) {
    const mine = await ours(c.n, c.repeats);
    let theirs = null;
    if (c.peer) {
      const peer = new Peer('nt_xent.py', { d: D, temperature: TEMPERATURE });
      await peer.next();
      theirs = await peer.ask({ n: c.n, repeats: c.repeats });
      peer.close();
    }
    record('nt-xent', {
      n: c.n, rows: 2 * c.n, d: D, temperature: TEMPERATURE,
      oursSeconds: mine.seconds, oursLoss: mine.loss, oursPeakBytes: mine.peakBytes,
      peerSeconds: theirs?.seconds ?? null, peerLoss: theirs?.loss ?? null, peerPeakBytes: theirs?.peakBytes ?? null,
      ratio: theirs ? theirs.seconds / mine.seconds : null,
      memoryFraction: theirs?.peakBytes && mine.peakBytes !== null ? mine.peakBytes / theirs.peakBytes : null,
      peerSkipped: c.peer ? null : `the lean form needs a ${bytesText((2 * c.n) ** 2 * 4)} similarity matrix`,
    });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
