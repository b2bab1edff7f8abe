'use strict';
// Augmentation of a decoded uint8 batch (B x 256 x 256 x 3) into two 128 px views per image with SimCLR's default
// augmentation, on the GPU (issue 13 target: >= 30 000 images/s). Ours: Augmenter.views, one native call per batch
// (the batched ATen path), from a batch in pinned host memory (the upload counted) and from a batch already on the GPU.
// Peer: the same augmentation in torchvision.transforms.v2, image by image on the GPU (random parameters per image, as
// a PyTorch pipeline draws them). Images/s = images (not views) per second, the device synchronised after each batch.
const { Augmenter, Tensor } = require('../../dist');
const { DRY, DEVICE, ON_CUDA, record, sync, median, seconds, Peer } = require('./lib');

const C = DRY ? { batch: 8, base: 64, size: 32, repeats: 3 } : { batch: 256, base: 256, size: 128, repeats: 20 };

function images(batch, base, seed) {
  let state = seed >>> 0;
  const data = new Uint8Array(batch * base * base * 3);
  for (let i = 0; i < data.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    // Smooth content with some noise, like photographs: a gradient per image plus a little randomness.
    data[i] = ((i % (base * 3)) / 3 + (Math.floor(i / (base * 3)) % base) + (state >>> 28)) & 255;
  }
  return data;
}

async function timeBatches(augmenter, input) {
  const times = [];
  for (let i = 0; i < C.repeats + 2; i++) {
    const start = process.hrtime.bigint();
    const views = await augmenter.views(input, { device: DEVICE });
    sync();
    if (i >= 2) times.push(seconds(start)); // two warm-up batches
    views.dispose();
  }
  return median(times);
}

async function main() {
  const data = images(C.batch, C.base, 1);
  const shape = [C.batch, C.base, C.base, 3];
  const augmenter = new Augmenter({ size: C.size }, { seed: 0 });
  const host = Tensor.fromTypedArray(data, shape, { pinMemory: ON_CUDA });
  const fromHost = await timeBatches(augmenter, host);
  const onDevice = host.to(DEVICE);
  const fromDevice = await timeBatches(augmenter, onDevice);
  const peer = new Peer('augment.py', { size: C.size, blurKernel: augmenter.config.blur.kernelSize });
  const ready = await peer.next();
  const theirs = await peer.ask({ batch: C.batch, base: C.base, repeats: Math.max(2, Math.floor(C.repeats / 4)) });
  peer.close();
  record('augment', {
    config: { ...C, pinned: host.pinned },
    torch: ready.version,
    torchvision: ready.torchvision,
    oursImagesPerSecondFromHost: C.batch / fromHost,
    oursImagesPerSecondOnDevice: C.batch / fromDevice,
    peerImagesPerSecond: C.batch / theirs.seconds,
    peerMethod: theirs.method,
    ratio: theirs.seconds / fromHost,
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
