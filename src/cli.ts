#!/usr/bin/env node
/** The `simclr` command line: parses flags into a RunConfig and calls src/train/run.ts; no training logic here. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as fs from 'fs';
import { doctor, formatDoctor } from './doctor';
import { DEFAULT_RUN_CONFIG, RunConfig, readConfigFile } from './train/run-config';

type Kind = 'int' | 'number' | 'string' | 'bool';

/** Every RunConfig field that has a flag: name, kind, help. The flag is the kebab-case name. */
const RUN_FLAGS: [keyof RunConfig, Kind, string][] = [
  ['data', 'string', 'training images: an image folder, a .csv/.jsonl manifest, or fashion-mnist'],
  ['evalData', 'string', 'labelled images for the kNN monitor and evaluation (fashion-mnist uses its test split)'],
  ['subset', 'int', 'train on a seeded random subset of this many images'],
  ['evalSubset', 'int', 'size of the evaluation splits (bank and queries)'],
  ['backbone', 'string', 'resnet18 | resnet34 | resnet50 | resnet101 | resnet152'],
  ['stem', 'string', "imagenet (7x7/2 conv + max-pool) or cifar (3x3/1 conv, no max-pool: small images)"],
  ['baseSize', 'int', 'side images are resized to when decoded'],
  ['imageSize', 'int', 'side of each augmented view'],
  ['jitterStrength', 'number', 'colour-jitter strength s'],
  ['blurProbability', 'number', 'probability of Gaussian blur'],
  ['minScale', 'number', 'smallest crop area fraction of RandomResizedCrop'],
  ['projectionDim', 'int', 'width of z'],
  ['projectionLayers', 'int', 'Linear layers in the projection head (2: SimCLR, 3: SimCLRv2)'],
  ['projectionBatchNorm', 'bool', 'BatchNorm in the projection head (SimCLRv2)'],
  ['epochs', 'int', 'passes over the training data'],
  ['batchSize', 'int', 'images per step (each gives two views)'],
  ['maxSteps', 'int', 'stop after this many steps'],
  ['optimizer', 'string', 'sgd | adamw | lars'],
  ['lr', 'number', 'base learning rate, scaled by --lr-scaling'],
  ['lrScaling', 'string', 'linear (lr * B / 256) | sqrt (lr * sqrt(B)) | none'],
  ['momentum', 'number', 'SGD/LARS momentum'],
  ['nesterov', 'bool', 'Nesterov momentum (SGD)'],
  ['weightDecay', 'number', 'weight decay (biases and BatchNorm excluded for LARS)'],
  ['warmupEpochs', 'number', 'epochs of linear warmup before the cosine decay'],
  ['temperature', 'number', 'NT-Xent temperature'],
  ['seed', 'int', 'seed of initialisation, shuffling and augmentation'],
  ['device', 'string', 'cpu | cuda | cuda:N'],
  ['knnEvery', 'int', 'run the kNN monitor every K epochs (0: never)'],
  ['knnK', 'int', 'neighbours of the kNN monitor'],
  ['knnTemperature', 'number', 'temperature of the kNN votes'],
  ['workers', 'int', 'decoding concurrency (x16 images in flight)'],
  ['out', 'string', 'run folder: last.ckpt, best.ckpt, metrics.jsonl, report.html'],
];

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function parser(kind: Kind, flag: string): ((value: string) => unknown) | undefined {
  if (kind === 'int') {
    return (value) => {
      if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`--${flag} expects an integer, got '${value}'`);
      return Number(value);
    };
  }
  if (kind === 'number') {
    return (value) => {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`--${flag} expects a number, got '${value}'`);
      return n;
    };
  }
  if (kind === 'bool') {
    return (value) => {
      if (value !== 'true' && value !== 'false') throw new InvalidArgumentError(`--${flag} expects true or false, got '${value}'`);
      return value === 'true';
    };
  }
  return undefined;
}

function addRunFlags(command: Command, only?: (keyof RunConfig)[]): Command {
  for (const [name, kind, help] of RUN_FLAGS) {
    if (only && !only.includes(name)) continue;
    const flag = kebab(name);
    const fallback = (DEFAULT_RUN_CONFIG as unknown as Record<string, unknown>)[name];
    const option = new Option(`--${flag} <${kind === 'bool' ? 'true|false' : 'value'}>`, `${help}${fallback !== undefined ? ` (default ${fallback})` : ''}`);
    const parse = parser(kind, flag);
    if (parse) option.argParser(parse);
    command.addOption(option);
  }
  return command;
}

/** Flags over the config file over the defaults. */
function runConfigFrom(options: Record<string, unknown>, base: Partial<RunConfig> = {}): Partial<RunConfig> {
  const fromFile = typeof options.config === 'string' ? readConfigFile(options.config) : {};
  const fromFlags: Partial<RunConfig> = {};
  for (const [name] of RUN_FLAGS) {
    if (options[name] !== undefined) (fromFlags as Record<string, unknown>)[name] = options[name];
  }
  return { ...base, ...fromFile, ...fromFlags };
}

function progressMode(value: unknown): 'auto' | 'plain' | 'none' {
  if (value === undefined) return 'auto';
  if (value === 'auto' || value === 'plain' || value === 'none') return value;
  throw new Error(`--progress expects auto, plain or none, got '${value}'`);
}

function requireFile(file: unknown, flag: string): string {
  // Plain errors: these run inside actions, where main() prints them (commander prints its own parse errors).
  if (typeof file !== 'string') throw new Error(`${flag} is required`);
  if (!fs.existsSync(file)) throw new Error(`${flag}: ${file} does not exist`);
  return file;
}

export function buildProgram(): Command {
  const program = new Command();
  program.name('simclr').description('SimCLR self-supervised learning on LibTorch').version(require('../package.json').version)
    .showHelpAfterError();

  addRunFlags(program.command('train').description('pretrain a SimCLR model')
    .option('--config <file>', 'JSON file of run settings (flags override it)')
    .option('--resume', 'continue the run in --out from its last.ckpt')
    .option('--progress <mode>', 'auto (bar on a TTY) | plain | none'))
    .action(async (options: Record<string, unknown>) => {
      const { runTraining } = await import('./train/run');
      const run = await runTraining(runConfigFrom(options), { resume: Boolean(options.resume), progress: progressMode(options.progress), handleSigint: true });
      console.log(JSON.stringify({ steps: run.steps, epochs: run.epochsCompleted, lastLoss: run.lastLoss, interrupted: run.interrupted,
        checkpoint: run.checkpoint, report: run.reportPath }, null, 2));
      if (run.interrupted) process.exitCode = 130;
    });

  addRunFlags(program.command('eval').description('kNN and linear-probe accuracy of a checkpoint\'s encoder, as JSON')
    .requiredOption('--checkpoint <file>', 'a checkpoint written by simclr train'), ['data', 'evalData', 'evalSubset', 'device', 'workers'])
    .action(async (options: Record<string, unknown>) => {
      const { loadCheckpointModel, evaluate } = await import('./train/run');
      const { model, config } = await loadCheckpointModel(requireFile(options.checkpoint, '--checkpoint'), runConfigFrom(options));
      console.log(JSON.stringify(await evaluate(model, config), null, 2));
    });

  addRunFlags(program.command('embed').description('write encoder features of a dataset as .npy (float32) plus labels')
    .requiredOption('--checkpoint <file>', 'a checkpoint written by simclr train')
    .requiredOption('--out <file.npy>', 'features file; labels go to <file>.labels.npy'), ['data', 'device', 'workers'])
    .action(async (options: Record<string, unknown>) => {
      const { loadCheckpointModel } = await import('./train/run');
      const { openDataset, extractFeatures } = await import('./train/pipeline');
      const { writeEmbeddings } = await import('./eval/embeddings');
      const { resolveAugmentConfig } = await import('./augment');
      const { out, checkpoint, ...rest } = options;
      const { model, config } = await loadCheckpointModel(requireFile(checkpoint, '--checkpoint'), runConfigFrom(rest));
      const dataset = openDataset(config.data, 'test', config.baseSize);
      const features = await extractFeatures(model, dataset, {
        size: config.imageSize, normalize: resolveAugmentConfig({ size: config.imageSize }).normalize, device: config.device, workers: config.workers,
      });
      await writeEmbeddings(String(out), features.features, features.labels);
      console.log(JSON.stringify({ out, rows: features.features.shape[0], dim: features.features.shape[1] }, null, 2));
    });

  program.command('export').description('write the encoder as a PyTorch state dict with torchvision keys')
    .requiredOption('--checkpoint <file>', 'a checkpoint written by simclr train')
    .requiredOption('--out <file.pt>', 'output state dict (load with torchvision: model.fc = nn.Identity())')
    .action(async (options: { checkpoint: string; out: string }) => {
      const { exportEncoder } = await import('./train/run');
      const result = await exportEncoder(requireFile(options.checkpoint, '--checkpoint'), options.out);
      console.log(JSON.stringify({ out: options.out, ...result }, null, 2));
    });

  program.command('doctor').description('show the LibTorch, CUDA, threads and BLAS that simclr uses')
    .option('--json', 'print the report as JSON')
    .action((options: { json?: boolean }) => {
      const report = doctor();
      console.log(options.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
    });

  addRunFlags(program.command('quickstart')
    .description('the main job: pretrain SimCLR on Fashion-MNIST, then compare linear probes against raw pixels and a random encoder')
    .option('--progress <mode>', 'auto (bar on a TTY) | plain | none'))
    .action(async (options: Record<string, unknown>) => {
      const { quickstart } = await import('./quickstart');
      await quickstart(runConfigFrom(options, { out: 'runs/quickstart' }), progressMode(options.progress));
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    console.error(`simclr: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code));
}

