/** Learning-rate schedule of SimCLR: base rate scaled with the batch size, linear warmup, then cosine decay. */
import { checkInteger } from '../errors';
import { checkSetting } from '../settings';
import { LR_SCALINGS, TRAINER_SETTINGS } from './trainer-settings';

export type LrScaling = (typeof LR_SCALINGS)[number];

export interface ScheduleConfig {
  /** Base learning rate before batch scaling (SimCLR: 0.3 with linear scaling, 0.075 with sqrt). */
  baseLr: number;
  /** `linear`: baseLr * batchSize / 256; `sqrt`: baseLr * sqrt(batchSize); `none`: baseLr. */
  scaling: LrScaling;
  batchSize: number;
  /** Steps of linear warmup from 0 to the peak rate. */
  warmupSteps: number;
  /** Total steps; the cosine decays to 0 at this step. */
  totalSteps: number;
}

/**
 * @internal Checks a schedule made by hand: lr, lrScaling and batchSize against their Trainer-setting entries (one
 * range for each, in train/trainer-settings.ts), and the step counts. The Trainer builds its schedule from options it has already
 * checked and does not call this.
 */
export function checkSchedule(config: ScheduleConfig): ScheduleConfig {
  checkSetting(TRAINER_SETTINGS.lr, 'lr', config.baseLr);
  checkSetting(TRAINER_SETTINGS.lrScaling, 'lrScaling', config.scaling);
  checkSetting(TRAINER_SETTINGS.batchSize, 'batchSize', config.batchSize);
  checkInteger(config.warmupSteps, 'warmupSteps', 0);
  checkInteger(config.totalSteps, 'totalSteps', 1);
  return config;
}

/** The peak learning rate after batch scaling. */
export function peakLearningRate(config: ScheduleConfig): number {
  switch (config.scaling) {
    case 'linear':
      return (config.baseLr * config.batchSize) / 256;
    case 'sqrt':
      return config.baseLr * Math.sqrt(config.batchSize);
    default:
      return config.baseLr;
  }
}

/** The learning rate for the update at `step` (0-based). */
export function learningRate(step: number, config: ScheduleConfig): number {
  const peak = peakLearningRate(config);
  if (step < config.warmupSteps) return (peak * (step + 1)) / config.warmupSteps;
  const decaySteps = Math.max(1, config.totalSteps - config.warmupSteps);
  const progress = Math.min(1, (step - config.warmupSteps) / decaySteps);
  return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
}
