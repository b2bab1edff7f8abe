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
import { DEFAULT_RUN_CONFIG, SimCLRModel, Encoder, createModel, validateRunConfig } from '../src';

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
    const epochs = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((r) => r.step === undefined);
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

describe('help tells the truth', () => {
  it('train --help states the defaults of RUN_SETTINGS, drop-last included', () => {
    const help = simclr('train', '--help').stdout.replace(/\s+/g, ' ');
    expect(help).toContain(`--drop-last <true|false> drop each epoch's short last batch`);
    expect(help).toContain(`default: ${DEFAULT_RUN_CONFIG.dropLast}`);
    expect(help).toMatch(/--stem <name> .*\(imagenet \| cifar; default: imagenet\)/);
    expect(help).toMatch(/--weights <value> start the encoder from these weights/);
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
