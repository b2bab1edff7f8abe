/**
 * A run's folder before training: a fresh one (a previous run there needs resume or overwrite), or a resumed one, whose
 * checkpoint gives the settings the run continues with.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readCheckpointHeader, checkTrainingMeta } from '../train/checkpoint';
import { eventFiles, removeEventFiles } from '../train/tensorboard';
import { RunConfig, SettingName, validateRunConfig } from './config';

/**
 * The settings a resumed run may change, each with what the change means. Every other setting is the run's recipe:
 * giving another value on resume is an error.
 */
const MAY_CHANGE_ON_RESUME: Partial<Record<SettingName, string>> = {
  out: 'where the run is',
  epochs: 'the learning-rate schedule is stretched or shortened to the new length from here on',
  maxSteps: 'the learning-rate schedule is stretched or shortened to the new step count from here on, and the run stops there',
  device: 'training continues on the new device',
  precision: 'the steps from here on run at the new precision (losses differ from an uninterrupted run by rounding)',
  memoryFormat: 'memory layout only (results agree to rounding)',
  workers: 'decoding concurrency only; results do not change',
  checkpointEvery: 'checkpoints follow the new interval',
  knnEvery: 'the kNN monitor follows the new interval; best.ckpt is chosen by what is monitored',
  knnK: 'the kNN monitor changes, and with it the choice of best.ckpt',
  knnTemperature: 'the kNN monitor changes, and with it the choice of best.ckpt',
  evalData: 'the kNN monitor changes, and with it the choice of best.ckpt',
  evalSubset: 'the kNN monitor changes, and with it the choice of best.ckpt',
};

const flag = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A data spec with its folder or manifest made absolute, so a run resumes (and evaluates) from any working folder. */
export function absoluteData(spec: string): string;
export function absoluteData(spec: string | undefined): string | undefined;
export function absoluteData(spec: string | undefined): string | undefined {
  return spec === undefined || spec === 'fashion-mnist' ? spec : path.resolve(spec);
}

/**
 * The config a resumed run continues with: its own recipe, with the changes `given` (the settings the caller set) may
 * make; any other difference is an error naming the setting.
 */
export async function resumedConfig(given: Partial<RunConfig>, out: string, last: string): Promise<{ config: RunConfig; notes: string[] }> {
  if (!fs.existsSync(last)) throw new Error(`--resume: no checkpoint at ${last}`);
  const { meta } = await readCheckpointHeader<{ format?: unknown }>(last);
  checkTrainingMeta(meta, last);
  const stored: Record<string, unknown> = { ...validateRunConfig(meta.config as Partial<RunConfig>) };
  const config: Record<string, unknown> = { ...stored, out };
  const notes: string[] = [];
  const conflicts: string[] = [];
  for (const [name, value] of Object.entries(given) as [SettingName, unknown][]) {
    if (value === undefined || name === 'out' || value === stored[name]) continue;
    const before = stored[name] === undefined ? 'none' : String(stored[name]);
    const meaning = MAY_CHANGE_ON_RESUME[name];
    if (meaning) {
      config[name] = value;
      const dropsMaxSteps = name === 'maxSteps' && value === 0;
      notes.push(`${flag(name)} ${String(value)} (the run had ${before}): ${dropsMaxSteps ? 'no step cap: the run is epochs x batches again, and so is its learning-rate schedule from here on' : meaning}`);
    } else {
      conflicts.push(`${name} (${flag(name)}) is ${String(value)} but the run has ${before}`);
    }
  }
  if (conflicts.length > 0) {
    throw new Error(`--resume continues the run in ${out} with its own settings, but ${conflicts.join('; ')}. Leave ` +
      `${conflicts.length > 1 ? 'these' : 'it'} out to resume, or start a new run in another --out`);
  }
  return { config: validateRunConfig(config as Partial<RunConfig>), notes };
}

/**
 * What a finished or interrupted run leaves in its folder, with its TensorBoard event files: starting another run there
 * needs resume or overwrite.
 */
const PREVIOUS_RUN_FILES = ['last.ckpt', 'best.ckpt', 'metrics.jsonl', 'report.html', 'report.svg'];

/**
 * Whether `out` holds what a run that never finished a step leaves (a failure or kill before step 1: metrics.jsonl with
 * its session record alone, an event file), and nothing more: no checkpoint, no report, no step. Event files without
 * a metrics.jsonl are not that: another run's or another program's.
 */
function holdsNoStep(out: string): boolean {
  if (PREVIOUS_RUN_FILES.some((name) => name !== 'metrics.jsonl' && fs.existsSync(path.join(out, name)))) return false;
  const metrics = path.join(out, 'metrics.jsonl');
  if (!fs.existsSync(metrics)) return false;
  return fs.readFileSync(metrics, 'utf8').split('\n').every((line) => {
    try {
      return !line || JSON.parse(line).step === undefined;
    } catch {
      return true; // a line cut short by a kill
    }
  });
}

/**
 * Removes what a run that never finished a step left in `out` (see holdsNoStep): there is nothing to resume, and a
 * retry of the command must not be refused for it. Anything else is left alone.
 */
export async function clearRunWithoutSteps(out: string): Promise<void> {
  if (!fs.existsSync(out) || !holdsNoStep(out)) return;
  await fs.promises.rm(path.join(out, 'metrics.jsonl'), { force: true });
  await removeEventFiles(out);
}

export async function checkFreshFolder(out: string, overwrite: boolean): Promise<void> {
  await clearRunWithoutSteps(out);
  const present = PREVIOUS_RUN_FILES.filter((name) => fs.existsSync(path.join(out, name)));
  // One name for the event files, however many sessions wrote them.
  const events = eventFiles(out).length > 0 ? ['events.out.tfevents.*'] : [];
  if (present.length + events.length === 0) return;
  if (!overwrite) {
    throw new Error(`${out} holds a previous run (${[...present, ...events].join(', ')}): continue it with --resume, start ` +
      'over with --overwrite, or choose another --out');
  }
  for (const name of present) await fs.promises.rm(path.join(out, name), { force: true });
  await removeEventFiles(out);
}
