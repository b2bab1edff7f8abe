/**
 * The Trainer's settings, written once: its loop's length, batch, learning-rate schedule and where it writes. The run
 * settings (run/config.ts) are made of these entries, so a Trainer and a run start from the same recipe and check the
 * same ranges. Besides these the Trainer takes the train step's settings (ops/train-step.ts TRAIN_STEP_SETTINGS,
 * OPTIMIZER_SETTINGS), which the step checks.
 */
import { Setting, ValueOf, checkSetting, defaultsOf } from '../settings';

/** How the base learning rate grows with the batch size B: `linear` lr·B/256, `sqrt` lr·√B, `none` lr. */
export const LR_SCALINGS = ['linear', 'sqrt', 'none'] as const;

export const TRAINER_SETTINGS = {
  epochs: { kind: 'int', min: 1, default: 10, help: 'passes over the training data' },
  batchSize: { kind: 'int', min: 2, default: 256, help: 'images per step (each gives two views); per worker in a data-parallel run' },
  maxSteps: {
    kind: 'int', min: 0,
    help: 'the run\'s length in steps instead of epochs x batches: the learning-rate schedule spans it and the run stops there (0: no cap, which drops a resumed run\'s)',
  },
  lr: { kind: 'number', min: 0, exclusiveMin: true, default: 0.06, help: 'base learning rate, scaled by --lr-scaling' },
  lrScaling: { kind: 'enum', choices: LR_SCALINGS, default: 'linear', help: 'how lr grows with the batch size B: linear lr * B / 256, sqrt lr * sqrt(B), none lr' },
  warmupEpochs: { kind: 'number', min: 0, default: 0, help: 'epochs of linear warmup before the cosine decay' },
  out: { kind: 'string', default: 'runs/simclr', help: 'run folder: last.ckpt, best.ckpt, metrics.jsonl, TensorBoard event files, report.html' },
  checkpointEvery: {
    kind: 'string', default: '10m', format: { pattern: /^(\d+|\d+(\.\d+)?m|epoch)$/, expected: "N steps ('500'), M minutes ('10m') or 'epoch'" },
    help: "also save last.ckpt every N steps ('500') or M minutes ('10m') within an epoch; 'epoch': only at epoch ends",
  },
} as const satisfies Record<string, Setting>;

export type TrainerSettingName = keyof typeof TRAINER_SETTINGS;
export type TrainerSettings = { -readonly [K in TrainerSettingName]: ValueOf<(typeof TRAINER_SETTINGS)[K]> };

/** The defaults of {@link TRAINER_SETTINGS} (maxSteps has none: the run's length is epochs x batches). */
export const TRAINER_DEFAULTS = defaultsOf(TRAINER_SETTINGS);

/** When `checkpointEvery` asks for a checkpoint within an epoch: every `steps` steps or `minutes` minutes (or never). */
export function checkpointInterval(value: string): { steps?: number; minutes?: number } {
  checkSetting(TRAINER_SETTINGS.checkpointEvery, 'checkpointEvery', value);
  if (value === 'epoch') return {};
  if (value.endsWith('m')) return Number(value.slice(0, -1)) > 0 ? { minutes: Number(value.slice(0, -1)) } : {};
  return Number(value) > 0 ? { steps: Number(value) } : {};
}
