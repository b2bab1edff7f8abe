'use strict';
// From a folder of 256x256 JPEGs to two 128x128 views per image: simclr's Loader (sharp decoding, resize to 224 as the
// seed's BASE) + Augmenter (the seed's AUGMENTATION, one native call per batch) against the seed's per-image PyTorch
// pipeline with a DataLoader of 0 and 2 workers, in the same run. Also augmentation alone on a decoded batch.
// Usage: npm run bench -- augment   (after building dist/). SIMCLR_BENCH_IMAGES sets the folder size (default 512).
const fs = require('fs');
const os = require('os');
const path = require('path');
const sharp = require('sharp');
const { ImageFolder, Loader, Augmenter, SEED_AUGMENTATION, getNumThreads } = require('../dist');
const { runPeer, timeIt, printTable, fmt } = require('./common');

const IMAGES = Number(process.env.SIMCLR_BENCH_IMAGES) || 512;
const PEER_IMAGES = Math.min(IMAGES, 256);
const BATCH = 128;

// Photo-like content (smooth colour fields plus noise), so the JPEGs are neither trivial nor pure noise to decode.
async function makeFolder(dir) {
  const side = 256;
  const pixels = Buffer.alloc(side * side * 3);
  let state = 1;
  for (let n = 0; n < IMAGES; n++) {
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        const i = 3 * (y * side + x);
        pixels[i] = 128 + 90 * Math.sin((x + n) / 17) + (state & 15);
        pixels[i + 1] = 128 + 90 * Math.cos((y - 2 * n) / 23) + ((state >>> 4) & 15);
        pixels[i + 2] = (x * y + 7 * n) % 256;
      }
    }
    await sharp(pixels, { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 90 })
      .toFile(path.join(dir, `img-${String(n).padStart(5, '0')}.jpg`));
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-bench-augment-'));
  try {
    await makeFolder(dir);
    const loader = new Loader(new ImageFolder(dir, { labels: 'none', size: 224 }), { batchSize: BATCH, seed: 0 });
    const augmenter = new Augmenter(SEED_AUGMENTATION, { seed: 0 });
    let epoch = 0;
    const pipeline = await timeIt(async () => {
      for await (const batch of loader.epoch(epoch++)) {
        const views = await augmenter.views(batch.images);
        views.dispose();
        batch.images.dispose();
      }
    }, { repeats: 3, warmup: 1 });
    const first = (await loader.epoch(0).next()).value;
    const augmentOnly = await timeIt(async () => (await augmenter.views(first.images)).dispose(), { repeats: 5 });
    const peer = runPeer('augment.py', { dir, images: PEER_IMAGES, batch: BATCH, workers: [0, 2], threads: getNumThreads() });
    const ours = IMAGES / pipeline;
    const best = Math.max(peer.workers0, peer.workers2);
    console.log(`augment: ${IMAGES} JPEGs 256x256 -> resize 224 -> 2 views 128x128 (seed's AUGMENTATION), batch ${BATCH}, ` +
      `threads ${getNumThreads()}, peer torch ${peer.version} on ${PEER_IMAGES} images`);
    printTable([
      { pipeline: 'files -> views (img/s)', simclr: fmt(ours, 0), 'pytorch 0 workers': fmt(peer.workers0, 0), 'pytorch 2 workers': fmt(peer.workers2, 0), 'ratio vs better': fmt(ours / best) },
      { pipeline: 'augmentation alone (img/s)', simclr: fmt(BATCH / augmentOnly, 0), 'pytorch 0 workers': fmt(peer.augmentOnly, 0), 'pytorch 2 workers': '-', 'ratio vs better': fmt(BATCH / augmentOnly / peer.augmentOnly) },
    ]);
    console.log('ratio = simclr images/s / PyTorch images/s (> 1: simclr is faster)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
