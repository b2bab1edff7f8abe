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
    const augmenter = new Augmenter(SEED_AUGMENTATION, { seed: 0 });
    // Base size 224 repeats the seed's Resize((224, 224)); null crops straight from the 256 px decode (no resize).
    const throughput = async (size, augment = true) => {
      const loader = new Loader(new ImageFolder(dir, { labels: 'none', size }), { batchSize: BATCH, seed: 0 });
      let epoch = 0;
      const seconds = await timeIt(async () => {
        for await (const batch of loader.epoch(epoch++)) {
          if (augment) (await augmenter.views(batch.images)).dispose();
          batch.images.dispose();
        }
      }, { repeats: 2, warmup: 1 });
      return { loader, imagesPerSecond: IMAGES / seconds };
    };
    const resized = await throughput(224);
    const unresized = await throughput(null);
    const decodeOnly = await throughput(224, false);
    const first = (await resized.loader.epoch(0).next()).value;
    const augmentOnly = BATCH / await timeIt(async () => (await augmenter.views(first.images)).dispose(), { repeats: 5 });
    const peer = runPeer('augment.py', { dir, images: PEER_IMAGES, batch: BATCH, workers: [0, 2], threads: getNumThreads() });
    console.log(`augment: ${IMAGES} JPEGs 256x256 -> 2 views 128x128 (seed's AUGMENTATION), batch ${BATCH}, ` +
      `threads ${getNumThreads()}, peer torch ${peer.version} on ${PEER_IMAGES} images (resize 224, as the seed)`);
    const cell = (x, digits = 0) => (x === undefined ? '-' : fmt(x, digits));
    const row = (pipeline, ours, zero, two) => ({
      pipeline, simclr: cell(ours), 'pytorch 0 workers': cell(zero), 'pytorch 2 workers': cell(two),
      'ratio vs better': zero === undefined ? '-' : fmt(ours / Math.max(zero, two ?? 0)),
    });
    printTable([
      row('files -> views, base 224 (img/s)', resized.imagesPerSecond, peer.workers0, peer.workers2),
      row('files -> views, base 256 (img/s)', unresized.imagesPerSecond, peer.workers0, peer.workers2),
      row('decoding + resize 224 alone (img/s)', decodeOnly.imagesPerSecond),
      row('augmentation alone (img/s)', augmentOnly, peer.augmentOnly),
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
