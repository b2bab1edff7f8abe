'use strict';
// From a folder of 256x256 JPEGs to augmented views: simclr's Loader (sharp decoding, resize to 224 as the seed's BASE)
// + Augmenter (the seed's AUGMENTATION, one native call per batch) against the seed's per-image PyTorch pipeline with
// a DataLoader of 0 and 2 workers, in the same run. Each stage is timed alone too (decoding, augmentation of a decoded
// batch) and with multi-crop (2 x 160 + 4 x 96 px views), on 1 and 2 threads, with images/s per core so that a host
// with more cores can be projected. The views of the vectorised kernels are checked bit-identical to the scalar ones.
// Usage: npm run bench -- augment   (after building dist/). SIMCLR_BENCH_IMAGES sets the folder size (default 512).
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const sharp = require('sharp');
const { runPeer, timeIt, printTable, fmt } = require('./common');

const IMAGES = Number(process.env.SIMCLR_BENCH_IMAGES) || 512;
const PEER_IMAGES = Math.min(IMAGES, 256);
const BATCH = 128;
const THREADS = [1, 2];
const MULTI_CROP = { size: 160, crop: { scale: [0.14, 1] }, smallCrops: { views: 4, size: 96, scale: [0.05, 0.14] } };

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

// ---- one thread count, in its own process (the libuv pool's size is fixed when the process starts) ----

async function measure(dir) {
  const { ImageFolder, Loader, Augmenter, SEED_AUGMENTATION, getNumThreads } = require('../dist');
  const { native } = require('../dist/native');
  const seedAugmenter = new Augmenter(SEED_AUGMENTATION, { seed: 0 });
  const multiAugmenter = new Augmenter({ ...SEED_AUGMENTATION, ...MULTI_CROP }, { seed: 0 });
  const viewsOf = async (augmenter, images) => {
    const views = augmenter.groups.length > 1 ? await augmenter.viewGroups(images) : [await augmenter.views(images)];
    for (const v of views) v.dispose();
  };
  // Images/s and cores busy (process CPU time / wall time) of `fn` processing `images` images per call.
  const timed = async (images, fn, options) => {
    const cpu0 = process.cpuUsage();
    const wall0 = process.hrtime.bigint();
    const seconds = await timeIt(fn, options);
    const cpu = process.cpuUsage(cpu0);
    return { rate: images / seconds, cores: (cpu.user + cpu.system) / (Number(process.hrtime.bigint() - wall0) / 1e3) };
  };
  // Whole epochs (all IMAGES files) through Loader (+ augmenter), median of 3 after one warm-up epoch.
  const throughput = async (size, augmenter) => {
    const loader = new Loader(new ImageFolder(dir, { labels: 'none', size }), { batchSize: BATCH, seed: 0 });
    let epoch = 0;
    return timed(IMAGES, async () => {
      for await (const batch of loader.epoch(epoch++)) {
        if (augmenter) await viewsOf(augmenter, batch.images);
        batch.images.dispose();
      }
    }, { repeats: 3, warmup: 1 });
  };
  // The decoding simclr had before its native JPEG path: sharp (libvips) decoding and resizing each file, 16 in flight.
  const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
  sharp.cache(false);
  const decodeSharp = await timed(IMAGES, async () => {
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < files.length) {
        const bytes = await fs.promises.readFile(files[next++]);
        await sharp(bytes, { failOn: 'warning' }).removeAlpha().toColourspace('srgb')
          .resize(224, 224, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
      }
    }));
  }, { repeats: 3, warmup: 1 });
  const result = {
    threads: getNumThreads(),
    decodeSharp,
    decode: await throughput(224, null),
    files224: await throughput(224, seedAugmenter),
    files256: await throughput(null, seedAugmenter),
    filesMultiCrop: await throughput(224, multiAugmenter),
  };
  const loader = new Loader(new ImageFolder(dir, { labels: 'none', size: 224 }), { batchSize: BATCH, seed: 0 });
  const { value: batch } = await loader.epoch(0).next();
  // Steady state, as a training loop sees it: the first ~10 calls of a process run slower (measured: 2 250-2 330 img/s
  // after 2 calls, 3 150-3 190 after 4 epochs of decoding and augmenting, same batch, 2 threads), so warm up with 10.
  result.augment = await timed(BATCH, () => viewsOf(seedAugmenter, batch.images), { repeats: 7, warmup: 10 });
  result.augmentMultiCrop = await timed(BATCH, () => viewsOf(multiAugmenter, batch.images), { repeats: 7, warmup: 10 });
  result.augmentScalar = await timed(BATCH, async () => {
    const { size, blur: { kernelSize }, normalize: { mean, std } } = seedAugmenter.config;
    const params = seedAugmenter.sample(BATCH, 224, 224);
    (await native.augmentViews(batch.images.handle, params, { size, blurKernel: kernelSize, mean, std, scalar: true })).dispose();
  }, { repeats: 3 });
  // The same parameters through the vectorised kernels, the scalar ones and the generic ATen ops.
  for (const augmenter of [seedAugmenter, multiAugmenter]) {
    const params = augmenter.sample(BATCH, 224, 224);
    const options = {
      groups: augmenter.groups.map(({ views, size, blurKernel }) => ({ views, size, blurKernel })),
      mean: augmenter.config.normalize.mean, std: augmenter.config.normalize.std,
    };
    const run = async (extra) => (await native.augmentViewGroups(batch.images.handle, params, { ...options, ...extra }))
      .map((t) => { const a = t.toTypedArray(); t.dispose(); return a; });
    const [fast, scalar, generic] = [await run({}), await run({ scalar: true }), await run({ generic: true })];
    let values = 0, differing = 0, maxGeneric = 0;
    fast.forEach((f, g) => {
      for (let i = 0; i < f.length; i++) {
        values++;
        if (!Object.is(f[i], scalar[g][i])) differing++;
        maxGeneric = Math.max(maxGeneric, Math.abs(f[i] - generic[g][i]));
      }
    });
    (result.parity ??= []).push({ groups: augmenter.groups.length, values, differing, maxGeneric });
  }
  batch.images.dispose();
  return result;
}

function measureIn(threads, dir) {
  const out = execFileSync(process.execPath, [__filename, '--measure', dir], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
    // The pool size simclr picks for `threads` cores (src/data/decode.ts: one per core, at least 2).
    env: { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(2, threads)), SIMCLR_NUM_THREADS: String(threads) },
  });
  return JSON.parse(out.trim().split('\n').pop());
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-bench-augment-'));
  try {
    await makeFolder(dir);
    const load = [os.loadavg()[0]];
    const byThreads = THREADS.map((t) => measureIn(t, dir));
    const peer = runPeer('augment.py', { dir, images: PEER_IMAGES, batch: BATCH, workers: [0, 2], threads: 2 });
    load.push(os.loadavg()[0]);
    console.log(`augment: ${IMAGES} JPEGs 256x256, batch ${BATCH}; the seed's AUGMENTATION (2 views of 128 px, blur 23 ` +
      `taps always); multi-crop: 2 x 160 + 4 x 96 px from base 224. Threads = intra-op threads; libuv ` +
      `pool max(2, threads). Peer: torch ${peer.version}, 2 threads, ${PEER_IMAGES} images, resize 224 as the seed. ` +
      `1-minute load ${load.map((l) => l.toFixed(2)).join(' -> ')} on ${os.availableParallelism()} cores.`);
    const [one, two] = byThreads;
    const better = Math.max(peer.workers0, peer.workers2);
    // Per core: images/s divided by the cores the process kept busy (CPU time / wall time), all threads counted.
    const row = (pipeline, key, peerValue) => ({
      'pipeline (images/s)': pipeline,
      '1 thread': fmt(one[key].rate, 0),
      'per core': fmt(one[key].rate / one[key].cores, 0),
      '2 threads': fmt(two[key].rate, 0),
      'per core ': fmt(two[key].rate / two[key].cores, 0),
      'cores busy': fmt(two[key].cores, 2),
      PyTorch: peerValue === undefined ? '-' : fmt(peerValue, 0),
      ratio: peerValue === undefined ? '-' : fmt(two[key].rate / peerValue),
    });
    printTable([
      row('files -> views, base 224', 'files224', better),
      row('files -> views, base 256 (no resize)', 'files256', better),
      row('files -> multi-crop views, base 224', 'filesMultiCrop'),
      row('decoding + resize 224 alone', 'decode'),
      row('  through sharp/libvips (before)', 'decodeSharp'),
      row('augmentation alone (decoded batch)', 'augment', peer.augmentOnly),
      row('  scalar kernels (the reference)', 'augmentScalar'),
      row('multi-crop augmentation alone', 'augmentMultiCrop'),
    ]);
    console.log(`PyTorch files -> views: ${fmt(peer.workers0, 0)} img/s with 0 workers, ${fmt(peer.workers2, 0)} with 2 ` +
      '(the better one is the files -> views yardstick); ratio = simclr on 2 threads / PyTorch (> 1: simclr is faster). ' +
      'Per core = images/s / cores busy (process CPU time / wall time).');
    for (const r of byThreads) {
      for (const p of r.parity) {
        console.log(`${r.threads} thread(s), ${p.groups === 1 ? 'two views' : 'multi-crop'}: vectorised views ` +
          `${p.differing === 0 ? 'bit-identical to' : `DIFFER in ${p.differing} of ${p.values} values from`} the scalar ` +
          `kernels (${p.values} values); max |vectorised - generic ATen| ${p.maxGeneric.toExponential(2)}`);
      }
    }
    if (byThreads.some((r) => r.parity.some((p) => p.differing > 0))) process.exitCode = 1;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--measure') {
  measure(process.argv[3]).then((r) => console.log(JSON.stringify(r)), (err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
