/**
 * The command line as a new user meets it: image folders with and without classes, starting from saved weights,
 * evaluation on a labelled folder with no separate test set, help texts that state what really happens, and errors
 * that name the flag and the fix. Runs dist/cli.js (built by the test setup).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { DEFAULT_RUN_CONFIG, SimCLRModel, Encoder, createModel, readNpy, validateRunConfig } from '../src';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const simclr = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });

let root: string;
const small = ['--base-size', '16', '--image-size', '16', '--batch-size', '8', '--epochs', '1', '--workers', '1', '--progress', 'none'];

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-cli-use-'));
  // Two classes of 10 images each (class folders), and the same 20 images in one flat folder.
  fs.mkdirSync(path.join(root, 'flat'));
  for (const [c, name] of ['dark', 'light'].entries()) {
    fs.mkdirSync(path.join(root, 'classes', name), { recursive: true });
    for (let i = 0; i < 10; i++) {
      const value = c === 0 ? 10 + 3 * i : 200 + 3 * i;
      const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: value, g: (value * 7) % 256, b: 255 - value } } }).png().toBuffer();
      fs.writeFileSync(path.join(root, 'classes', name, `${i}.png`), png);
      fs.writeFileSync(path.join(root, 'flat', `${name}-${i}.png`), png);
    }
  }
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('a mistyped flag', () => {
  it('prints the error, the flag meant and where the flags are, in a few lines the error does not scroll away from', () => {
    const run = simclr('train', '--bach-size', '3');
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([
      "error: unknown option '--bach-size'", '(Did you mean --batch-size?)', '(simclr <command> --help lists its flags)',
    ]);
  });
});

describe('image folders', () => {
  it('a flat folder is refused with the flag that fixes it', () => {
    const run = simclr('train', '--data', path.join(root, 'flat'), '--out', path.join(root, 'no-run'), ...small);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/has no class subfolders: for a flat folder of unlabelled images pass --labels none/);
  });

  it('--labels none trains on a flat folder (no monitor: there are no labels)', () => {
    const out = path.join(root, 'flat-run');
    const run = simclr('train', '--data', path.join(root, 'flat'), '--labels', 'none', '--out', out, ...small);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout).steps).toBe(2); // 20 images, batches of 8, the short one dropped
  });

  it('a labelled folder gets a kNN monitor and eval without --eval-data, on a held-out fifth', () => {
    const out = path.join(root, 'class-run');
    const train = simclr('train', '--data', path.join(root, 'classes'), '--out', out, ...small);
    expect(train.status).toBe(0);
    const epochs = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.step === undefined && r.epoch !== undefined);
    expect(epochs).toEqual([expect.objectContaining({ epoch: 1, knnAccuracy: expect.any(Number) })]);
    const evaluation = simclr('eval', '--checkpoint', path.join(out, 'last.ckpt'));
    expect(evaluation.stderr).toBe('');
    expect(JSON.parse(evaluation.stdout)).toMatchObject({ bankSize: 16, querySize: 4, knnAccuracy: expect.any(Number) });
  });
});

describe('--weights', () => {
  it('starts training from an exported encoder', () => {
    const first = path.join(root, 'weights-a');
    expect(simclr('train', '--data', path.join(root, 'flat'), '--labels', 'none', '--out', first, ...small).status).toBe(0);
    const encoder = path.join(root, 'encoder.pt');
    const exported = simclr('export', '--checkpoint', path.join(first, 'last.ckpt'), '--out', encoder);
    expect(JSON.parse(exported.stdout)).toMatchObject({ backbone: 'resnet18', stem: 'imagenet' });
    const run = simclr('train', '--data', path.join(root, 'flat'), '--labels', 'none', '--weights', encoder, '--out', path.join(root, 'weights-b'), ...small);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('the model starts with exactly the weights given (torchvision keys into encoder.*)', async () => {
    const file = path.join(root, 'start.pt');
    const source = await Encoder.create({ backbone: 'resnet18', outDim: 0 });
    await source.saveStateDict(file);
    const model = await createModel(validateRunConfig({ weights: file }));
    const ours = await model.stateDict();
    const theirs = await source.stateDict();
    for (const key of ['conv1.weight', 'layer4.1.bn2.running_var', 'layer2.0.downsample.0.weight']) {
      expect(ours[`encoder.${key}`].toTypedArray()).toEqual(theirs[key].toTypedArray());
    }
  });

  it("starts training from a torchvision classifier's weights: the backbone loads, the ImageNet fc (1000 classes) is left out", async () => {
    // What torchvision's resnet18(weights=...).state_dict() holds: the backbone and fc.weight 1000 x 512, fc.bias 1000.
    const file = path.join(root, 'resnet18-imagenet-classifier.pth');
    const classifier = await Encoder.create({ backbone: 'resnet18', outDim: 1000 });
    await classifier.saveStateDict(file);
    const theirs = await classifier.stateDict();
    expect([theirs['fc.weight'].shape, theirs['fc.bias'].shape]).toEqual([[1000, 512], [1000]]);

    const run = simclr('train', '--data', path.join(root, 'flat'), '--labels', 'none', '--weights', file, '--out', path.join(root, 'from-imagenet'), ...small);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    // The model a run starts from: the classifier's backbone, and the SimCLR head in place of its fc.
    const ours = await (await createModel(validateRunConfig({ weights: file }))).stateDict();
    for (const key of ['conv1.weight', 'layer4.1.bn2.running_var']) expect(ours[`encoder.${key}`].toTypedArray()).toEqual(theirs[key].toTypedArray());
    expect(Object.keys(ours).filter((key) => key.startsWith('encoder.fc.'))).toEqual([]);
  });

  it.each([
    ['another backbone (resnet34)', { backbone: 'resnet34' }, /96 unexpected key\(s\) \(layer1\.2\.conv1\.weight/],
    ['the other stem (cifar)', { backbone: 'resnet18', stem: 'cifar' }, /Shape mismatch for encoder\.conv1\.weight/],
  ] as const)('weights of %s are refused naming --weights, the file and the model they were meant for', async (_what, options, detail) => {
    const file = path.join(root, `misfit-${options.backbone}-${'stem' in options ? options.stem : 'imagenet'}.pth`);
    await (await Encoder.create({ ...options, outDim: 1000 })).saveStateDict(file);
    const run = simclr('train', '--data', path.join(root, 'flat'), '--labels', 'none', '--weights', file, '--out', path.join(root, 'none'), ...small);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`simclr: --weights: The weights in ${file} do not fit a resnet18 encoder (imagenet stem): `);
    expect(run.stderr).toMatch(detail);
    expect(run.stderr.length).toBeLessThan(600);
  });

  it('the API names a missing weights file and what it should be', async () => {
    const missing = path.join(root, 'missing.pth');
    const expected = `Cannot read weights '${missing}': no such file (expected a PyTorch state dict: a torchvision .pth or a file written by saveStateDict / simclr export)`;
    await expect(Encoder.create({ backbone: 'resnet18', outDim: 0, weights: missing })).rejects.toThrow(expected);
    await expect(SimCLRModel.create({ backbone: 'resnet18', weights: missing })).rejects.toThrow(expected);
  });

  it('a missing file names the flag and what it should be', () => {
    const run = simclr('train', '--weights', path.join(root, 'resnet18-nothere.pth'), '--out', path.join(root, 'none'), ...small);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/--weights: .*resnet18-nothere\.pth does not exist \(give a torchvision \.pth/);
  });

  it('a SimCLR model state dict given as an encoder gets a short error with the prefix hint, not every key', async () => {
    const model = await SimCLRModel.create({ backbone: 'resnet18' });
    const file = path.join(root, 'whole-model.pt');
    await model.saveStateDict(file);
    const encoder = await Encoder.create({ backbone: 'resnet18', outDim: 0 });
    const error = await encoder.loadStateDict(file).then(() => undefined, (err: Error) => err);
    expect(error?.message).toMatch(/120 missing key\(s\) \(conv1\.weight, bn1\.weight, bn1\.bias, bn1\.running_mean and 116 more\) and 124 unexpected key\(s\)/);
    expect(error?.message).toMatch(/keys start with 'encoder\.': it holds a whole SimCLR model .* `simclr export/);
    expect(error!.message.length).toBeLessThan(600);
  });
});

describe('--drop-last false', () => {
  it("trains each epoch's short last batch too: metrics.jsonl has its step, with its images", () => {
    // 20 images in batches of 8: two full batches and one of 4 (the default, true, drops it: 2 steps).
    const out = path.join(root, 'keep-last');
    const run = simclr('train', '--data', path.join(root, 'flat'), '--labels', 'none', '--drop-last', 'false', '--out', out, ...small);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout).steps).toBe(3);
    const steps = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.step !== undefined);
    expect(steps.map((r) => [r.step, r.images])).toEqual([[1, 8], [2, 8], [3, 4]]);
    expect(Number.isFinite(steps[2].loss)).toBe(true);
  });
});

describe('help tells the truth', () => {
  it('train --help states the defaults of RUN_SETTINGS, drop-last included', () => {
    const help = simclr('train', '--help').stdout.replace(/\s+/g, ' ');
    expect(help).toContain(`--drop-last <true|false> drop each epoch's short last batch`);
    expect(help).toContain(`default: ${DEFAULT_RUN_CONFIG.dropLast}`);
    expect(help).toMatch(/--stem <name> .*\(imagenet \| cifar; default: imagenet\)/);
    expect(help).toMatch(/--weights <value> start the encoder from these weights/);
    expect(help).toContain('the ImageNet classifier resnet18-f37072fd.pth (its fc is left out)');
  });

  it("embed --help states the default of --data, and embed without it embeds the checkpoint's training images", async () => {
    const help = simclr('embed', '--help').stdout.replace(/\s+/g, ' ');
    expect(help).toContain("--data <value> images to embed: an image folder, a .csv/.jsonl manifest, or fashion-mnist (its test split) (default: the checkpoint's)");
    const out = path.join(root, 'embed-run');
    expect(simclr('train', '--data', path.join(root, 'classes'), '--out', out, ...small).status).toBe(0);
    const file = path.join(root, 'embedded.npy');
    const embed = simclr('embed', '--checkpoint', path.join(out, 'last.ckpt'), '--out', file);
    expect(embed.stderr).toBe('');
    // All 20 images of the class folder the run trained on, with their classes.
    expect(JSON.parse(embed.stdout)).toMatchObject({ rows: 20, dim: 512 });
    const labels = Array.from((await readNpy(path.join(root, 'embedded.labels.npy'))).data as ArrayLike<number | bigint>, Number);
    expect(labels.sort()).toEqual([...Array(10).fill(0), ...Array(10).fill(1)]);
  });

  it('embed and export refuse an --out that is the checkpoint, or that cannot be written, before the work', () => {
    const out = path.join(root, 'embed-run'); // trained by the test above
    const checkpoint = path.join(out, 'last.ckpt');
    const before = fs.readFileSync(checkpoint);
    for (const command of ['embed', 'export']) {
      const same = simclr(command, '--checkpoint', checkpoint, '--out', checkpoint);
      expect([same.status, same.stderr.trim()]).toEqual([1, `simclr: --out ${checkpoint} would overwrite the --checkpoint file ${checkpoint}: choose another path`]);
      const nowhere = simclr(command, '--checkpoint', checkpoint, '--out', path.join(root, 'no-such-folder', 'x.npy'));
      expect([nowhere.status, nowhere.stderr.trim()]).toEqual([1, `simclr: --out ${path.join(root, 'no-such-folder', 'x.npy')}: the folder ${path.join(root, 'no-such-folder')} does not exist`]);
      // A file where the folder should be.
      const underFile = path.join(checkpoint, 'x.npy');
      const file = simclr(command, '--checkpoint', checkpoint, '--out', underFile);
      expect([file.status, file.stderr.trim()]).toEqual([1, `simclr: --out ${underFile}: ${checkpoint} is a file, not a folder`]);
      // Writable by its mode (root may write anywhere), yet no file can be made there: refused before the work too.
      if (fs.existsSync('/proc/self')) {
        const proc = simclr(command, '--checkpoint', checkpoint, '--out', '/proc/simclr-x.npy');
        expect([proc.status, proc.stderr.trim()]).toEqual([1, 'simclr: --out /proc/simclr-x.npy: the folder /proc takes no new files (ENOENT)']);
      }
    }
    // embed's labels file (<out>.labels.npy) is an output too.
    const named = path.join(root, 'c.labels.npy');
    fs.copyFileSync(checkpoint, named);
    const labels = simclr('embed', '--checkpoint', named, '--out', path.join(root, 'c.npy'));
    expect([labels.status, labels.stderr.trim()]).toEqual([1, `simclr: --out ${path.join(root, 'c.npy')} would overwrite the --checkpoint file ${named}: choose another path`]);
    expect(fs.readFileSync(checkpoint).equals(before) && fs.readFileSync(named).equals(before)).toBe(true);
  });

  it('eval --help says where the labels come from when --eval-data is left out', () => {
    const help = simclr('eval', '--help').stdout.replace(/\s+/g, ' ');
    expect(help).toMatch(/--eval-data <value> labelled images to classify \(default: the checkpoint's; without one, fashion-mnist's test split, or a held-out fifth of labelled --data\)/);
  });

  it('export --help carries the CIFAR-stem caveat', () => {
    const help = simclr('export', '--help').stdout.replace(/\s+/g, ' ');
    expect(help).toContain('a --stem cifar run also needs model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False) and model.maxpool = nn.Identity()');
  });

  it('a bad value names the flag, not the config key', () => {
    const run = simclr('train', '--momentum', '2', '--out', path.join(root, 'none'));
    expect(run.stderr).toMatch(/for --momentum but received 2/);
  });
});

describe('embed keeps the mapping from rows to files', () => {
  // The run trained on the class folder by "embed --help states the default of --data" above.
  const checkpoint = () => path.join(root, 'embed-run', 'last.ckpt');
  const mixed = () => path.join(root, 'mixed');
  const good = () => ['dark/0.png', 'dark/1.png', 'dark/2.png', 'light/0.png', 'light/1.png', 'light/2.png'].map((f) => path.join(mixed(), f));
  const rowsOf = async (file: string) => {
    const { shape, data } = await readNpy(file);
    return Array.from({ length: shape[0] }, (_, i) => (data as Float32Array).subarray(i * shape[1], (i + 1) * shape[1]));
  };

  beforeAll(async () => {
    // Three good images of each class, and two that cannot be read: text named .png, and a JPEG cut in half.
    for (const name of ['dark', 'light']) {
      fs.mkdirSync(path.join(mixed(), name), { recursive: true });
      for (let i = 0; i < 3; i++) fs.copyFileSync(path.join(root, 'classes', name, `${i}.png`), path.join(mixed(), name, `${i}.png`));
    }
    fs.writeFileSync(path.join(mixed(), 'dark', '1-broken.png'), 'text, not a PNG');
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } }).jpeg().toBuffer();
    fs.writeFileSync(path.join(mixed(), 'light', 'truncated.jpg'), jpeg.subarray(0, jpeg.length >> 1));
  });

  it('leaves unreadable files out, lists them with the reason and counts them; <out>.files.csv names each row\'s file, label and class', async () => {
    const file = path.join(root, 'mixed.npy');
    const run = simclr('embed', '--checkpoint', checkpoint(), '--data', mixed(), '--out', file);
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ rows: 6, dim: 512, skipped: 2 });
    // Said once, by embed: no loader warning besides it that speaks of epochs (embedding is one pass).
    expect(run.stderr.trim()).toBe(`simclr: 2 file(s) could not be read and have no row; ${path.join(root, 'mixed.skipped.csv')} lists them with the reason`);
    const classOf = (f: string) => (f.includes('/dark/') ? [0, 'dark'] : [1, 'light']);
    expect(fs.readFileSync(path.join(root, 'mixed.files.csv'), 'utf8')).toBe(`path,label,class\n${good().map((f) => `${f},${classOf(f).join(',')}\n`).join('')}`);
    const labels = Array.from((await readNpy(path.join(root, 'mixed.labels.npy'))).data as BigInt64Array, Number);
    expect(labels).toEqual([0, 0, 0, 1, 1, 1]);
    const skipped = fs.readFileSync(path.join(root, 'mixed.skipped.csv'), 'utf8').trim().split('\n');
    expect(skipped[0]).toBe('path,reason');
    expect(skipped.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`^${path.join(mixed(), 'dark', '1-broken.png')},.*unsupported image format`)),
      expect.stringMatching(new RegExp(`^${path.join(mixed(), 'light', 'truncated.jpg')},.+`)),
    ]);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'mixed.classes.json'), 'utf8'))).toEqual(['dark', 'light']);
  });

  it("a row's features are those of its file embedded alone (from a manifest without labels: label -1, no class)", async () => {
    const manifest = path.join(root, 'one.csv');
    fs.writeFileSync(manifest, `${good()[4]}\n`);
    const run = simclr('embed', '--checkpoint', checkpoint(), '--data', manifest, '--out', path.join(root, 'one.npy'));
    expect([run.status, run.stderr]).toEqual([0, '']);
    expect(fs.readFileSync(path.join(root, 'one.files.csv'), 'utf8')).toBe(`path,label,class\n${good()[4]},-1,\n`);
    const [alone] = await rowsOf(path.join(root, 'one.npy'));
    const row = (await rowsOf(path.join(root, 'mixed.npy')))[4];
    expect(Math.max(...row.map((v, i) => Math.abs(v - alone[i])))).toBeLessThan(1e-5);
  });

  it('embed and eval take --precision; a bad value is refused naming the flag and its choices', async () => {
    for (const command of ['embed', 'eval']) {
      expect(simclr(command, '--help').stdout.replace(/\s+/g, ' ')).toMatch(/--precision <name> fp32, or autocast to bf16\/fp16 .*\(auto \| fp32 \| bf16 \| fp16; default: the checkpoint's\)/);
    }
    const embedded: Float32Array[][] = [];
    for (const precision of ['fp32', 'bf16']) {
      const file = path.join(root, `subset-${precision}.npy`);
      const run = simclr('embed', '--checkpoint', checkpoint(), '--subset', '4', '--precision', precision, '--out', file);
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ rows: 4, skipped: 0, precision });
      embedded.push(await rowsOf(file));
    }
    // bf16 autocast changes the numbers a little, not the rows (the same seeded subset of 4 images).
    const [fp32, bf16] = embedded.map((rows) => rows.flatMap((r) => Array.from(r)));
    const scale = Math.max(...fp32.map(Math.abs));
    const gap = Math.max(...fp32.map((v, i) => Math.abs(v - bf16[i])));
    expect(gap).toBeGreaterThan(0);
    expect(gap).toBeLessThan(0.05 * scale);
    const evaluation = simclr('eval', '--checkpoint', checkpoint(), '--precision', 'bf16');
    expect(evaluation.status).toBe(0);
    expect(JSON.parse(evaluation.stdout)).toMatchObject({ knnAccuracy: expect.any(Number) });
    for (const command of ['embed', 'eval']) {
      const bad = simclr(command, '--checkpoint', checkpoint(), '--precision', 'fp8', ...(command === 'embed' ? ['--out', path.join(root, 'bad.npy')] : []));
      expect([bad.status, bad.stderr.trim()]).toEqual([1, "simclr: Expected one of auto, fp32, bf16, fp16 for --precision but received 'fp8' of type string"]);
    }
  });

  it('embed and eval take --memory-format: the same features in either layout, up to float32 rounding', async () => {
    for (const command of ['embed', 'eval']) {
      expect(simclr(command, '--help').stdout.replace(/\s+/g, ' ')).toMatch(/--memory-format <name> contiguous \(NCHW\) or channelsLast \(NHWC\).*default: the checkpoint's\)/);
    }
    const embedded: number[][] = [];
    for (const memoryFormat of ['contiguous', 'channelsLast']) {
      const file = path.join(root, `subset-${memoryFormat}.npy`);
      const run = simclr('embed', '--checkpoint', checkpoint(), '--subset', '4', '--precision', 'fp32', '--memory-format', memoryFormat, '--out', file);
      expect(run.status).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ rows: 4, precision: 'fp32', memoryFormat });
      embedded.push((await rowsOf(file)).flatMap((r) => Array.from(r)));
    }
    const [contiguous, channelsLast] = embedded;
    const scale = Math.max(...contiguous.map(Math.abs));
    expect(Math.max(...contiguous.map((v, i) => Math.abs(v - channelsLast[i])))).toBeLessThan(1e-4 * scale);
    const evaluation = simclr('eval', '--checkpoint', checkpoint(), '--memory-format', 'channelsLast');
    expect(evaluation.status).toBe(0);
    expect(JSON.parse(evaluation.stdout)).toMatchObject({ knnAccuracy: expect.any(Number) });
    const bad = simclr('eval', '--checkpoint', checkpoint(), '--memory-format', 'nhwc');
    expect([bad.status, bad.stderr.trim()]).toEqual([1, expect.stringMatching(/for --memory-format but received 'nhwc'/)]);
  });
});
