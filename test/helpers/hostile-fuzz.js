'use strict';
// Random calls of the public API with hostile files and options: special files (a FIFO, /dev/zero, /dev/urandom,
// /dev/null, a link to /dev/zero, a folder), damaged ones (truncated, flipped, random bytes, empty) and good ones, and
// random option objects. Every call must settle, with a value or a JS Error, within CALL_TIMEOUT_MS: never a crash or a
// hang. Usage: node hostile-fuzz.js <calls> <seed>; prints a JSON summary (calls, settled, errors, peak RSS).
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const simclr = require(path.join(ROOT, 'dist'));
const { decodeFile } = require(path.join(ROOT, 'dist', 'data', 'decode'));
const { decodeJpeg } = require(path.join(ROOT, 'dist', 'augment', 'image-batch'));
const { readConfigFile } = require(path.join(ROOT, 'dist', 'run', 'config'));
const preprocess = require(path.join(ROOT, 'dist', 'preprocess'));

const calls = Number(process.argv[2] || 1000);
let state = Number(process.argv[3] || 1) >>> 0;
const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const pick = (list) => list[Math.floor(random() * list.length)];
const CALL_TIMEOUT_MS = 20_000;

async function files(dir) {
  const at = (name) => path.join(dir, name);
  const good = at('good.ckpt');
  await simclr.writeCheckpoint(good, { meta: { format: 'simclr-checkpoint' }, tensors: { w: simclr.Tensor.ones([64]) } });
  const bytes = fs.readFileSync(good);
  fs.writeFileSync(at('truncated.ckpt'), bytes.subarray(0, bytes.length - 40));
  const flipped = Buffer.from(bytes);
  flipped[flipped.length - 9] ^= 0xff;
  fs.writeFileSync(at('flipped.ckpt'), flipped);
  fs.writeFileSync(at('random.bin'), Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256))));
  fs.writeFileSync(at('empty.pt'), '');
  await simclr.writeNpy(at('good.npy'), new Float32Array([1, 2, 3, 4]), [2, 2]);
  const png = await require('sharp')({ create: { width: 8, height: 8, channels: 3, background: 'red' } }).png().toBuffer();
  fs.writeFileSync(at('image.png'), png);
  fs.writeFileSync(at('image.jpg'), png); // a PNG named .jpg
  fs.writeFileSync(at('config.json'), '{"batchSize": 4}');
  fs.mkdirSync(at('folder/a'), { recursive: true });
  fs.writeFileSync(at('folder/a/x.png'), png);
  if (spawnSync('mkfifo', [at('pipe.jpg')]).status !== 0) throw new Error('mkfifo failed');
  fs.symlinkSync('/dev/zero', at('zero.pth'));
  fs.writeFileSync(at('list.csv'), `image.png,1\npipe.jpg,2\nzero.pth,cat\n${at('missing.png')}\n`);
  fs.symlinkSync(at('pipe.jpg'), at('folder/a/pipe.png'));
  return [good, at('truncated.ckpt'), at('flipped.ckpt'), at('random.bin'), at('empty.pt'), at('good.npy'), at('image.png'),
    at('image.jpg'), at('config.json'), at('folder'), at('list.csv'), at('pipe.jpg'), at('zero.pth'), at('missing.png'),
    '/dev/zero', '/dev/urandom', '/dev/null', dir, ''];
}

const numbers = [0, -1, 1, 2, 0.5, NaN, Infinity, -Infinity, 1e9, 2 ** 53, 3.7];
const anything = () => pick([undefined, null, 'x', pick(numbers), [], {}, [pick(numbers), pick(numbers)], true]);
const options = () => {
  const keys = ['size', 'crop', 'flipProbability', 'jitterStrength', 'colorJitter', 'blur', 'normalize', 'smallCrops', 'blurProbability',
    'batchSize', 'epochs', 'lr', 'temperature', 'subset', 'precision', 'backbone'];
  const o = {};
  for (let i = 0, n = Math.floor(random() * 4); i < n; i++) o[pick(keys)] = anything();
  return o;
};

/** A regular file's bytes; anything else (a FIFO, a device, a folder, nothing) as random bytes, which callers get too. */
function bytesOf(file) {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (stat?.isFile()) return fs.readFileSync(file);
  return Buffer.from(Array.from({ length: Math.floor(random() * 512) }, () => Math.floor(random() * 256)));
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-hostile-'));
  process.chdir(dir);
  const pool = await files(dir);
  const attempts = [
    (f) => simclr.readCheckpoint(f),
    (f) => simclr.readCheckpointHeader(f),
    (f) => simclr.readStateDict(f),
    (f) => simclr.readNpy(f),
    (f) => simclr.Encoder.create({ backbone: 'resnet18', outDim: 0, weights: f }),
    (f) => simclr.loadCheckpointModel(f),
    async (f) => new simclr.ImageFolder(f, { size: 8 }).get(0),
    async (f) => new simclr.ManifestDataset(f, { size: 8 }).get(Math.floor(random() * 4)),
    (f) => decodeFile(f, [8, 8]),
    (f) => decodeJpeg(f, [8, 8]),
    async (f) => readConfigFile(f),
    async () => new simclr.Augmenter(options()),
    async () => simclr.validateRunConfig(options()),
    async () => simclr.resolveAugmentConfig(options()),
    // Serving and export: a checkpoint path to export, image bytes to model input, an ONNX file's metadata.
    (f) => simclr.exportOnnx(f, path.join(dir, 'out.onnx'), pick([undefined, options(), { projection: anything(), imageSize: anything() }])),
    (f) => simclr.imagesToModelInput([bytesOf(f)], pick([{ size: 8 }, options()])),
    async (f) => preprocess.readOnnxInputSpec(bytesOf(f)),
    (f) => preprocess.imageToOnnxInput(bytesOf(f), pick([{ size: 8, baseSize: 8, mean: [0, 0, 0], std: [1, 1, 1] }, options(), anything()])),
  ];
  const summary = { calls: 0, settled: 0, returned: 0, errors: 0, nonErrors: 0, peakRssMiB: 0 };
  for (let i = 0; i < calls; i++) {
    const attempt = pick(attempts);
    summary.calls++;
    let timer;
    const outcome = await Promise.race([
      Promise.resolve().then(() => attempt(pick(pool))).then(() => 'returned', (err) => (err instanceof Error ? 'error' : 'nonError')),
      new Promise((resolve) => (timer = setTimeout(() => resolve('hung'), CALL_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (outcome === 'hung') {
      process.stdout.write(JSON.stringify({ ...summary, hung: attempt.toString() }) + '\n');
      process.exit(3);
    }
    summary.settled++;
    if (outcome === 'returned') summary.returned++;
    else if (outcome === 'error') summary.errors++;
    else summary.nonErrors++;
    summary.peakRssMiB = Math.max(summary.peakRssMiB, process.memoryUsage().rss / 2 ** 20);
  }
  const peakKiB = Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
  summary.peakRssMiB = Math.round(Math.max(summary.peakRssMiB, peakKiB / 1024));
  fs.rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`hostile fuzz setup failed: ${err.stack}\n`);
  process.exit(2);
});
