#!/usr/bin/env node
/** The `simclr` command line: parses flags into a RunConfig and calls train/ and eval/; no training logic here. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { doctor, formatDoctor } from './doctor';
import { DEFAULT_RUN_CONFIG, RUN_SETTINGS, RunConfig, SEED_STREAMS, SETTING_NAMES, Setting, SettingName, readConfigFile } from './run/config';
import { QUICKSTART_CONFIG, QUICKSTART_LOW_PRECISION_BUDGET } from './run/quickstart-recipe';
import { configureThreadPool } from './preprocess/decode';

// The libuv pool's size for decoding, before anything uses the pool.
configureThreadPool();

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function parser(setting: Setting, flag: string): ((value: string) => unknown) | undefined {
  if (setting.kind === 'int') {
    return (value) => {
      if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`Expected an integer for --${flag} but received '${value}'`);
      return Number(value);
    };
  }
  if (setting.kind === 'number') {
    return (value) => {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`Expected a number for --${flag} but received '${value}'`);
      return n;
    };
  }
  if (setting.kind === 'bool') {
    return (value) => {
      if (value !== 'true' && value !== 'false') throw new InvalidArgumentError(`Expected true or false for --${flag} but received '${value}'`);
      return value === 'true';
    };
  }
  // Strings and choices pass through; validateRunConfig checks them with the other settings.
  return undefined;
}

/** Per-command wording of a flag: its help text and what applies when it is left out. */
type FlagWording = Partial<Record<SettingName, { help?: string; fallback?: string }>>;

/**
 * Adds a flag for each run setting (all of RUN_SETTINGS, or `only`). `defaults` are the values that apply when a flag
 * is left out, shown in --help: the command's own (train: DEFAULT_RUN_CONFIG), or 'checkpoint' for the commands that
 * take them from a checkpoint's stored config. `wording` replaces the help or the stated default where a command uses
 * a setting differently.
 */
function addRunFlags(command: Command, defaults: Partial<RunConfig> | 'checkpoint', only: readonly SettingName[] = SETTING_NAMES,
  wording: FlagWording = {}): Command {
  for (const name of only) {
    const setting: Setting = RUN_SETTINGS[name];
    const flag = kebab(name);
    const placeholder = setting.kind === 'bool' ? 'true|false' : setting.kind === 'enum' ? 'name' : 'value';
    const fallback = wording[name]?.fallback ?? (defaults === 'checkpoint' ? "the checkpoint's" : defaults[name]);
    const notes = [setting.kind === 'enum' ? setting.choices.join(' | ') : '', fallback !== undefined ? `default: ${fallback}` : ''].filter(Boolean);
    const option = new Option(`--${flag} <${placeholder}>`, `${wording[name]?.help ?? setting.help}${notes.length ? ` (${notes.join('; ')})` : ''}`);
    const parse = parser(setting, flag);
    if (parse) option.argParser(parse);
    command.addOption(option);
  }
  return command;
}

const INT: Setting = { kind: 'int', min: 0, help: '' };

/** The launcher's own flags (train): not run settings, since they describe processes, not the recipe. */
const LAUNCH_FLAGS = ['nprocPerNode', 'nnodes', 'nodeRank', 'masterAddr', 'masterPort'];

/** The flags a launcher passes to each of its workers: the run's settings, config file, resume and progress. */
function workerFlags(options: Record<string, unknown>): string[] {
  const flags: string[] = [];
  for (const name of SETTING_NAMES) {
    if (options[name] !== undefined) flags.push(`--${kebab(name)}`, String(options[name]));
  }
  if (typeof options.config === 'string') flags.push('--config', path.resolve(options.config));
  if (options.resume) flags.push('--resume');
  if (options.overwrite) flags.push('--overwrite');
  if (options.progress !== undefined) flags.push('--progress', String(options.progress));
  return flags;
}

/** Flags over the config file over `base` (validateRunConfig adds the defaults). */
function runConfigFrom(options: Record<string, unknown>, base: Partial<RunConfig> = {}): Partial<RunConfig> {
  const fromFile = typeof options.config === 'string' ? readConfigFile(options.config) : {};
  const fromFlags: Record<string, unknown> = {};
  for (const name of SETTING_NAMES) {
    if (options[name] !== undefined) fromFlags[name] = options[name];
  }
  return { ...base, ...fromFile, ...fromFlags };
}

function progressMode(value: unknown): 'auto' | 'plain' | 'none' {
  if (value === undefined) return 'auto';
  if (value === 'auto' || value === 'plain' || value === 'none') return value;
  throw new Error(`Expected auto, plain or none for --progress but received '${value}'`);
}

function requireFile(file: unknown, flag: string): string {
  // Plain errors: these run inside actions, where main() prints them (commander prints its own parse errors).
  if (typeof file !== 'string') throw new Error(`${flag} is required`);
  if (!fs.existsSync(file)) throw new Error(`${flag}: ${file} does not exist`);
  return file;
}

/** Whether two paths name one file (by device and inode where the first exists, else by resolved path). */
/** fs.statSync, undefined where nothing is (ENOENT, or ENOTDIR: a file where a folder of the path should be). */
function statIfAny(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file, { throwIfNoEntry: false });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function sameFile(a: string, b: string): boolean {
  const sa = statIfAny(a);
  const sb = statIfAny(b);
  return sa && sb ? sa.dev === sb.dev && sa.ino === sb.ino : path.resolve(a) === path.resolve(b);
}

/**
 * An output file, checked before the work that fills it: one that is an input (`--out` = `--checkpoint` would replace
 * last.ckpt) or that cannot be written where it is asked for is an error now, naming the flag, not after the work.
 */
function outputFile(file: unknown, flag: string, inputs: Record<string, string>, alsoWritten: string[] = []): string {
  if (typeof file !== 'string' || file === '') throw new Error(`${flag} is required`);
  for (const target of [file, ...alsoWritten]) {
    for (const [inputFlag, input] of Object.entries(inputs)) {
      if (sameFile(target, input)) throw new Error(`${flag} ${file} would overwrite the ${inputFlag} file ${input}: choose another path`);
    }
    const folder = path.dirname(path.resolve(target));
    if (statIfAny(target)?.isDirectory()) throw new Error(`${flag} ${file}: ${target} is a folder`);
    const where = statIfAny(folder);
    if (!where) throw new Error(`${flag} ${file}: the folder ${folder} does not exist`);
    if (!where.isDirectory()) throw new Error(`${flag} ${file}: ${folder} is a file, not a folder`);
    checkCanCreateIn(folder, `${flag} ${file}`);
  }
  return file;
}

/**
 * Creates and removes a file in `folder`, so that an output that cannot be written fails before the work rather than
 * after it: write permission says too little (root may write anywhere, yet /proc and /sys take no new files).
 */
function checkCanCreateIn(folder: string, what: string): void {
  const probe = path.join(folder, `.simclr-write-check-${process.pid}.tmp`);
  try {
    fs.closeSync(fs.openSync(probe, 'wx'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return fs.rmSync(probe, { force: true }); // a leftover of this pid's: writable all the same
    const reason = code === 'EACCES' || code === 'EPERM' ? 'is not writable' : code === 'EROFS' ? 'is on a read-only file system'
      : `takes no new files (${code ?? (err as Error).message})`;
    throw new Error(`${what}: the folder ${folder} ${reason}`);
  }
  fs.rmSync(probe, { force: true });
}

/** A setting named in a message ("Expected ... for batchSize but received ...") is named as its flag, --batch-size. */
function flagNames(message: string): string {
  return message.replace(/\bfor (\w+) but received\b/g, (whole, name: string) =>
    (Object.hasOwn(RUN_SETTINGS, name) ? `for --${kebab(name)} but received` : whole));
}

export function buildProgram(): Command {
  const program = new Command();
  program.name('simclr').description('SimCLR self-supervised learning on LibTorch').version(require('../package.json').version)
    // The error and where the flags are, not ~150 lines of help that scroll the error away.
    .showHelpAfterError('(simclr <command> --help lists its flags)');

  addRunFlags(program.command('train').description('pretrain a SimCLR model')
    .option('--config <file>', 'JSON file of run settings (flags override it)')
    .option('--resume', 'continue the run in --out from its last.ckpt')
    .option('--overwrite', 'start over in an --out that holds a previous run (removes its checkpoints, metrics and report)')
    .option('--progress <mode>', 'auto (bar on a TTY) | plain | none')
    .addOption(new Option('--nproc-per-node <k>', 'data-parallel: start K workers on this machine, as torchrun (one per GPU, or per share of the cores)').argParser(parser(INT, 'nproc-per-node')!))
    .addOption(new Option('--nnodes <n>', 'data-parallel: machines in the run, each with its own launcher (default 1)').argParser(parser(INT, 'nnodes')!))
    .addOption(new Option('--node-rank <i>', 'data-parallel: this machine\'s index, 0..nnodes-1 (default 0)').argParser(parser(INT, 'node-rank')!))
    .option('--master-addr <host>', 'data-parallel: address of node 0 as every machine reaches it (default 127.0.0.1)')
    .addOption(new Option('--master-port <port>', 'data-parallel: port of the rendezvous on node 0 (default: a free port on one machine, 29500 on several)').argParser(parser(INT, 'master-port')!)),
  DEFAULT_RUN_CONFIG)
    .action(async (options: Record<string, unknown>) => {
      const partial = runConfigFrom(options);
      if (LAUNCH_FLAGS.some((name) => options[name] !== undefined)) {
        const { launch } = await import('./run/launch');
        const { validateRunConfig } = await import('./run/config');
        validateRunConfig(partial); // a bad setting fails here once, not in every worker
        process.exitCode = await launch({
          nprocPerNode: (options.nprocPerNode as number | undefined) ?? 1,
          nnodes: options.nnodes as number | undefined,
          nodeRank: options.nodeRank as number | undefined,
          masterAddr: options.masterAddr as string | undefined,
          masterPort: options.masterPort as number | undefined,
          command: process.execPath,
          args: [__filename, 'train', ...workerFlags(options)],
        });
        return;
      }
      const { runTraining } = await import('./run/run');
      const { exitWithLauncher } = await import('./run/launch');
      exitWithLauncher();
      // Under a launcher (ours, torchrun --no-python, a scheduler) the environment says which worker this is.
      const distributed = process.env.WORLD_SIZE ? 'env' : undefined;
      const run = await runTraining(partial, {
        resume: Boolean(options.resume), overwrite: Boolean(options.overwrite), progress: progressMode(options.progress), handleSigint: true, distributed,
      });
      if (!distributed || process.env.RANK === '0') {
        console.log(JSON.stringify({ steps: run.steps, epochs: run.epochsCompleted, lastLoss: run.lastLoss, interrupted: run.interrupted,
          ...(run.alreadyComplete ? { alreadyComplete: true } : {}), checkpoint: run.checkpoint, report: run.reportPath }, null, 2));
      }
      if (run.interrupted) process.exitCode = run.stoppedBy === 'SIGTERM' ? 143 : 130;
    });

  addRunFlags(program.command('eval').description('kNN and linear-probe accuracy of a checkpoint\'s encoder, as JSON')
    .requiredOption('--checkpoint <file>', 'a checkpoint written by simclr train'), 'checkpoint', ['data', 'labels', 'evalData', 'evalSubset', 'device', 'precision', 'memoryFormat', 'workers'], {
    data: { help: 'training images whose labels give the kNN bank' },
    evalData: {
      help: 'labelled images to classify',
      fallback: "the checkpoint's; without one, fashion-mnist's test split, or a held-out fifth of labelled --data",
    },
  })
    .action(async (options: Record<string, unknown>) => {
      const { loadCheckpointModel } = await import('./run/model');
      const { evaluate } = await import('./run/evaluate');
      const { resolveRun } = await import('./run/resolve');
      const { model, config } = await loadCheckpointModel(requireFile(options.checkpoint, '--checkpoint'), runConfigFrom(options));
      // Resolved here, so that a precision the device lacks (fp16 on a CPU) fails before the data is opened.
      console.log(JSON.stringify(await evaluate(model, resolveRun(config)), null, 2));
    });

  addRunFlags(program.command('embed').description('write encoder features of a dataset as .npy (float32), with each row\'s file, label and class, ' +
    'and the files that could not be read')
    .requiredOption('--checkpoint <file>', 'a checkpoint written by simclr train')
    .requiredOption('--out <file.npy>', 'features file; beside it <file>.labels.npy, <file>.files.csv (each row\'s path,label,class, in row ' +
      'order), <file>.skipped.csv (the unreadable files, which have no row: path,reason) and <file>.classes.json'),
  'checkpoint', ['data', 'labels', 'subset', 'device', 'precision', 'memoryFormat', 'workers'], {
    data: { help: 'images to embed: an image folder, a .csv/.jsonl manifest, or fashion-mnist (its test split)' },
    subset: { help: 'embed a seeded random subset of this many images', fallback: 'all of them' },
  })
    .action(async (options: Record<string, unknown>) => {
      const { loadCheckpointModel } = await import('./run/model');
      const { openDataset, maybeSubset } = await import('./data/open');
      const { extractFeatures } = await import('./eval/features');
      const { writeEmbeddings, embeddingPaths } = await import('./eval/embeddings');
      const { resolveAugmentConfig } = await import('./augment');
      const { resolveRun } = await import('./run/resolve');
      const { out, checkpoint, ...rest } = options;
      const checkpointFile = requireFile(checkpoint, '--checkpoint');
      outputFile(out, '--out', { '--checkpoint': checkpointFile }, Object.values(embeddingPaths(String(out))));
      const { model, config: stored } = await loadCheckpointModel(checkpointFile, runConfigFrom(rest));
      const config = resolveRun(stored);
      // Only --subset: the checkpoint's own subset is what its run trained on, not what to embed.
      const subset = options.subset === undefined ? undefined : config.subset;
      const dataset = maybeSubset(openDataset(config.data, 'test', config.baseSize, { labels: config.labels }), subset, config.seed + SEED_STREAMS.subset);
      const extracted = await extractFeatures(model, dataset, {
        size: config.imageSize, normalize: resolveAugmentConfig({ size: config.imageSize }).normalize, device: config.device, workers: config.workers,
        forward: { precision: config.precision, memoryFormat: config.memoryFormat },
      });
      const written = await writeEmbeddings(String(out), extracted.features, extracted.labels, extracted);
      const skipped = extracted.skipped.length;
      if (skipped > 0) console.error(`simclr: ${skipped} file(s) could not be read and have no row; ${written.skippedPath} lists them with the reason`);
      console.log(JSON.stringify({ out, rows: extracted.features.shape[0], dim: extracted.features.shape[1], skipped, precision: config.precision,
        memoryFormat: config.memoryFormat }, null, 2));
    });

  program.command('export').description('write a checkpoint\'s encoder: as a PyTorch state dict with torchvision keys (--format torch, the default; ' +
    'no fc: load it with model.fc = nn.Identity(); a --stem cifar run also needs model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False) and ' +
    'model.maxpool = nn.Identity()), or as an ONNX model for ONNX Runtime in Node or a browser (--format onnx: input images N x 3 x S x S, ' +
    'output h, and z with --projection; the expected size, mean and std in its metadata)')
    .requiredOption('--checkpoint <file>', 'a checkpoint written by simclr train')
    .requiredOption('--out <file>', 'output file (.pt for torch, .onnx for onnx)')
    .addOption(new Option('--format <format>', 'torch | onnx').choices(['torch', 'onnx']).default('torch'))
    .option('--projection', 'onnx: also output z, the projection head\'s output')
    .action(async (options: { checkpoint: string; out: string; format: 'torch' | 'onnx'; projection?: boolean }) => {
      const checkpoint = requireFile(options.checkpoint, '--checkpoint');
      const out = outputFile(options.out, '--out', { '--checkpoint': checkpoint });
      if (options.format === 'onnx') {
        const { exportOnnx } = await import('./run/model');
        const result = await exportOnnx(checkpoint, out, { projection: Boolean(options.projection) });
        console.log(JSON.stringify({ ...result, out: options.out }, null, 2));
        return;
      }
      if (options.projection) throw new Error('--projection: only an ONNX export (--format onnx) has the projection head');
      const { exportEncoder } = await import('./run/model');
      const result = await exportEncoder(checkpoint, out);
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
    .option('--progress <mode>', 'auto (bar on a TTY) | plain | none'), { ...DEFAULT_RUN_CONFIG, ...QUICKSTART_CONFIG }, SETTING_NAMES, {
    subset: { fallback: `${QUICKSTART_CONFIG.subset}; ${QUICKSTART_LOW_PRECISION_BUDGET.subset} where the run computes in bf16` },
    epochs: { fallback: `${QUICKSTART_CONFIG.epochs}; ${QUICKSTART_LOW_PRECISION_BUDGET.epochs} where the run computes in bf16` },
  })
    .action(async (options: Record<string, unknown>) => {
      const { quickstart } = await import('./quickstart');
      await quickstart(runConfigFrom(options), progressMode(options.progress));
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
    console.error(`simclr: ${flagNames(err instanceof Error ? err.message : String(err))}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code));
}

