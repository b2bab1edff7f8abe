/** The `simclr` command line, run as a user would (node dist/cli.js, built by the test setup). */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describeWithOracle, runPython } from './helpers/oracle';
import { runOnnx } from './helpers/onnx-runtime';
import { FASHION_MNIST_CLASSES, fashionMnist, readCheckpointHeader, CheckpointMeta } from '../src';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const simclr = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 600_000 });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-cli-'));

describe('simclr CLI: bad input gives a clear error and a non-zero exit', () => {
  it.each([
    [['train', '--epochs', 'abc'], /Expected an integer for --epochs but received 'abc'/],
    [['train', '--lr', 'fast'], /Expected a number for --lr/],
    [['train', '--optimizer', 'rmsprop', '--out', path.join(os.tmpdir(), 'simclr-cli-bad')], /one of sgd, adamw, lars/],
    [['train', '--data', '/nonexistent/images', '--out', path.join(os.tmpdir(), 'simclr-cli-bad')], /does not exist/],
    [['train', '--config', '/nonexistent/run.json'], /Cannot read config file/],
    [['train', '--batch-size', '1', '--out', path.join(os.tmpdir(), 'simclr-cli-bad')], /for --batch-size but received 1/],
    [['train', '--resume', '--out', '/nonexistent/run'], /no checkpoint at/],
    [['eval', '--checkpoint', '/nonexistent/last.ckpt'], /does not exist/],
    [['export', '--out', 'x.pt'], /required option '--checkpoint/],
    [['bogus'], /unknown command 'bogus'/],
    [['train', '--epochs'], /argument missing/],
  ])('simclr %j', (args, message) => {
    const run = simclr(...(args as string[]));
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(message);
    expect(run.signal).toBeNull();
  });

  it('lists the commands in --help', () => {
    const run = simclr('--help');
    expect(run.status).toBe(0);
    for (const command of ['train', 'eval', 'embed', 'export', 'doctor']) expect(run.stdout).toContain(command);
  });

  it('doctor reports the LibTorch and the BLAS as JSON', () => {
    const run = simclr('doctor', '--json');
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.libtorch.version).toMatch(/^\d+\.\d+/);
    expect(report.threads).toBeGreaterThan(0);
    expect(['openblas', 'mkl', 'reference', 'unknown']).toContain(report.blas.kind);
  });

  it("doctor shows the CPU's native bf16 support, as /proc/cpuinfo has it, and what precision 'auto' picks", () => {
    const report = JSON.parse(simclr('doctor', '--json').stdout);
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'))!.split(/\s+/);
    expect(report.cpu.avx512bf16).toBe(flags.includes('avx512_bf16'));
    expect(report.cpu.amxBf16).toBe(flags.includes('amx_bf16'));
    expect(report.cpu.autoPrecision).toBe(report.cpu.avx512bf16 || report.cpu.amxBf16 ? 'bf16' : 'fp32');
    expect(simclr('doctor').stdout).toMatch(/cpu bf16 .*precision 'auto' on the CPU: (fp32|bf16)/);
  });

  it('doctor says who decodes JPEGs: the native libjpeg decoder when the addon has it, else sharp', () => {
    const report = JSON.parse(simclr('doctor', '--json').stdout);
    const { hasJpegDecoder } = require('../src/augment/image-batch') as typeof import('../src/augment/image-batch');
    expect(report.decoding).toEqual({ jpeg: hasJpegDecoder() ? 'libjpeg (native)' : 'sharp', other: 'sharp' });
    expect(simclr('doctor').stdout).toMatch(/^decoding {4}JPEG: (libjpeg \(native\)|sharp)/m);
  });
});

describe('simclr train --small-crops (multi-crop)', () => {
  it('trains on 2 + K views per image and stores the setting in the checkpoint', async () => {
    const out = tmp();
    const run = simclr('train', '--data', 'fashion-mnist', '--subset', '16', '--batch-size', '8', '--epochs', '1', '--base-size', '16',
      '--image-size', '16', '--small-crops', '2', '--small-crop-size', '8', '--knn-every', '0', '--workers', '1', '--progress', 'none', '--out', out);
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).steps).toBe(2);
    const header = await readCheckpointHeader<CheckpointMeta>(path.join(out, 'last.ckpt'));
    expect(header.meta.config).toMatchObject({ smallCrops: 2, smallCropSize: 8, smallCropMinScale: 0.05, smallCropMaxScale: 0.14 });
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('names both flags when the small crops\' scale range is empty', () => {
    const run = simclr('train', '--small-crops', '2', '--small-crop-min-scale', '0.3', '--small-crop-max-scale', '0.1', '--out', path.join(os.tmpdir(), 'simclr-cli-bad'));
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/Expected a number <= smallCropMaxScale \(0\.1\) for --small-crop-min-scale but received 0\.3/);
  });
});

describeWithOracle('simclr CLI: train, eval, embed and export on Fashion-MNIST', (python) => {
  const out = tmp();
  const tiny = ['--data', 'fashion-mnist', '--subset', '32', '--eval-subset', '64', '--batch-size', '16', '--epochs', '2',
    '--base-size', '16', '--image-size', '16', '--stem', 'cifar', '--workers', '1', '--progress', 'plain', '--out', out];

  it('train writes last.ckpt, best.ckpt, metrics.jsonl and the report', () => {
    const run = simclr('train', ...tiny);
    expect(run.stderr).not.toMatch(/Error/);
    expect(run.status).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.steps).toBe(4);
    for (const file of ['last.ckpt', 'best.ckpt', 'metrics.jsonl', 'report.html', 'report.svg']) expect(fs.existsSync(path.join(out, file))).toBe(true);
    const records = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records.filter((r) => r.step !== undefined)).toHaveLength(4);
    expect(records.filter((r) => r.step === undefined && r.knnAccuracy !== undefined).length).toBeGreaterThan(0);
  });

  it('eval prints kNN and linear-probe accuracy as JSON', () => {
    const run = simclr('eval', '--checkpoint', path.join(out, 'last.ckpt'));
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.knnAccuracy).toBeGreaterThan(0.1);
    expect(result.linearProbe.testAccuracy).toBeGreaterThan(0.1);
  });

  it('embed writes features and labels that numpy reads, and which test image and class each row is', () => {
    // A seeded subset of the 10 000 test images: the whole split took a minute on 2 cores.
    const file = path.join(out, 'emb.npy');
    const run = simclr('embed', '--checkpoint', path.join(out, 'last.ckpt'), '--data', 'fashion-mnist', '--subset', '300', '--out', file);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ rows: 300, dim: 512, skipped: 0 });
    const read = JSON.parse(runPython(python, `
import csv, json, sys, numpy as np
a = json.loads(sys.argv[1])
x = np.load(a["f"]); y = np.load(a["l"])
with open(a["files"], newline="") as f: rows = list(csv.DictReader(f))
print(json.dumps({"shapes": [list(x.shape), str(x.dtype), list(y.shape), str(y.dtype), bool(np.isfinite(x).all())],
                  "labels": y.tolist(), "rows": rows}))`, { f: file, l: path.join(out, 'emb.labels.npy'), files: path.join(out, 'emb.files.csv') }));
    expect(read.shapes).toEqual([[300, 512], 'float32', [300], 'int64', true]);
    // Each row names its test image; its label is that image's, and its class that label's name.
    const test = fashionMnist('test');
    const indices = read.rows.map((row: { path: string }) => Number(/^fashion-mnist:test:(\d+)$/.exec(row.path)![1]));
    expect(new Set(indices).size).toBe(300);
    expect(read.labels).toEqual(indices.map((i: number) => test.labels[i]));
    expect(read.rows.map((row: { label: string; class: string }) => [Number(row.label), row.class]))
      .toEqual(read.labels.map((label: number) => [label, FASHION_MNIST_CLASSES[label]]));
    expect(JSON.parse(fs.readFileSync(path.join(out, 'emb.classes.json'), 'utf8'))).toEqual(FASHION_MNIST_CLASSES);
    expect(fs.readFileSync(path.join(out, 'emb.skipped.csv'), 'utf8')).toBe('path,reason\n');
  });

  it('export writes an encoder that torchvision loads with strict=True', () => {
    const file = path.join(out, 'encoder.pt');
    const run = simclr('export', '--checkpoint', path.join(out, 'last.ckpt'), '--out', file);
    expect(run.status).toBe(0);
    const result = runPython(python, `
import json, sys, torch, torchvision
m = torchvision.models.resnet18()
m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False); m.maxpool = torch.nn.Identity(); m.fc = torch.nn.Identity()
m.load_state_dict(torch.load(json.loads(sys.argv[1])["f"]), strict=True)
print(m(torch.zeros(2, 3, 16, 16)).shape[1])`, { f: file });
    expect(result.trim()).toBe('512');
  });

  it('export --format onnx writes a model that ONNX Runtime runs at the run\'s image size, with h and z', () => {
    const file = path.join(out, 'encoder.onnx');
    const run = simclr('export', '--checkpoint', path.join(out, 'last.ckpt'), '--out', file, '--format', 'onnx', '--projection');
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ out: file, outputs: { h: 512, z: 128 }, input: { name: 'images', shape: ['batch', 3, 16, 16] }, opset: 17 });
    const result = runOnnx(file, [{ data: new Float32Array(3 * 3 * 16 * 16), dims: [3, 3, 16, 16] }]);
    expect([result.outputs[0].h.dims, result.outputs[0].z.dims]).toEqual([[3, 512], [3, 128]]);
  });

  it('export says what does not fit: --projection of a torch state dict, an unknown format', () => {
    const checkpoint = path.join(out, 'last.ckpt');
    const projection = simclr('export', '--checkpoint', checkpoint, '--out', path.join(out, 'x.pt'), '--projection');
    expect([projection.status, projection.stderr]).toEqual([1, expect.stringContaining('--projection: only an ONNX export (--format onnx)')]);
    const format = simclr('export', '--checkpoint', checkpoint, '--out', path.join(out, 'x.tf'), '--format', 'tf');
    expect([format.status, format.stderr]).toEqual([1, expect.stringMatching(/--format.*'tf' is invalid.*torch, onnx/)]);
  });
});
