/**
 * The main job (`npm start`): pretrain SimCLR on Fashion-MNIST within about ten minutes on a 2-core CPU, then put
 * the linear probe on its frozen features beside the same probe on raw pixels and on a randomly initialised encoder.
 */
import { doctor, formatDoctor } from './doctor';
import { RunConfig, SEED_STREAMS, validateRunConfig } from './run/config';
import { QUICKSTART_CONFIG, quickstartRecipe } from './run/quickstart-recipe';
import { resolveRun } from './run/resolve';
import { reportSettings, runTraining } from './run/run';
import { createModel } from './run/model';
import { evaluate, Evaluation, EvaluationSplits } from './run/evaluate';
import { openDataset, maybeSubset } from './data/open';
import { ReportOptions, readMetrics, writeReport } from './train/report';
import { formatDuration } from './train/progress';

/**
 * The main job's probe protocol, fixed here and the same for its three rows (SimCLR encoder, raw pixels, random
 * encoder): a seeded subset of 10 000 images of the Fashion-MNIST training split to fit the probe (and the kNN bank),
 * the official 10 000-image test split to score it. The linear probe's own settings are linearProbe's defaults.
 */
export const QUICKSTART_PROTOCOL = Object.freeze({ trainImages: 10000, testImages: 'all (10 000)' });

/** The quickstart's evaluation splits for a run config (only its seed and base size matter). */
export function quickstartSplits(config: RunConfig): EvaluationSplits {
  return {
    bank: maybeSubset(openDataset('fashion-mnist', 'train', config.baseSize), QUICKSTART_PROTOCOL.trainImages, config.seed + SEED_STREAMS.evalBank),
    query: openDataset('fashion-mnist', 'test', config.baseSize),
  };
}

/** The quick recipe and its budget by precision; see run/quickstart-recipe.ts. */
export { QUICKSTART_CONFIG, QUICKSTART_LOW_PRECISION_BUDGET, quickstartRecipe } from './run/quickstart-recipe';

/** The quickstart's run config with `overrides`: the recipe for the precision the run resolves to on its device. */
export function quickstartConfig(overrides: Partial<RunConfig>): RunConfig {
  const settings = validateRunConfig({ ...QUICKSTART_CONFIG, ...overrides });
  return validateRunConfig({ ...quickstartRecipe(resolveRun(settings).precision), ...overrides });
}

/**
 * What the quickstart's report shows besides the run's own records: its settings, the baselines (raw pixels, random
 * encoder; `rows` after the SimCLR encoder's) as lines on the kNN chart, the three linear probes as bars and in the
 * table, and the pretraining time.
 */
export function quickstartReport(config: RunConfig, rows: readonly [string, Evaluation][], splits: EvaluationSplits, trainSeconds: number): ReportOptions {
  const percent = (x: number) => `${(100 * x).toFixed(2)}%`;
  return {
    settings: reportSettings(config),
    baselines: Object.fromEntries(rows.slice(1).map(([name, e]) => [name, e.knnAccuracy])),
    results: {
      'probe split': `${splits.bank.length} train / ${splits.query.length} test images`,
      ...Object.fromEntries(rows.map(([name, e]) => [`linear probe: ${name}`, percent(e.linearProbe.testAccuracy)])),
    },
    probes: Object.fromEntries(rows.map(([name, e]) => [name, e.linearProbe.testAccuracy])),
    timing: { 'pretraining wall time': formatDuration(trainSeconds) },
  };
}

export async function quickstart(overrides: Partial<RunConfig>, progress: 'auto' | 'plain' | 'none'): Promise<void> {
  if (overrides.evalSubset !== undefined || overrides.evalData !== undefined || (overrides.data ?? 'fashion-mnist') !== 'fashion-mnist') {
    throw new RangeError('the quickstart pretrains and probes on Fashion-MNIST with a fixed protocol (10 000 training / 10 000 test images): ' +
      'use simclr train and simclr eval for other data or splits');
  }
  console.log(formatDoctor(doctor()));
  const config = quickstartConfig(overrides);
  console.log(`\npretraining SimCLR: ${config.backbone} (${config.stem} stem), ${config.subset ?? 'all'} Fashion-MNIST images, ` +
    `${config.epochs} epochs, batch ${config.batchSize}, ${config.imageSize} px views, ${resolveRun(config).precision} -> ${config.out}`);
  const started = Date.now();
  // The main job starts afresh each time (its folder is its own): a previous quickstart's run is replaced.
  const run = await runTraining(config, { progress, handleSigint: true, overwrite: true, keepMonitorFeatures: true });
  const trainSeconds = (Date.now() - started) / 1000;
  if (run.interrupted) {
    console.log(`interrupted: ${run.checkpoint} holds the run; continue with simclr train --resume --out ${config.out}`);
    return;
  }
  const splits = quickstartSplits(run.config);
  console.log(`\nlinear probes on frozen features: ${splits.bank.length} train / ${splits.query.length} test images`);
  const rows: [string, Evaluation][] = [];
  run.model.eval();
  // The final kNN monitor ran on these same splits (a test holds them equal) with the trained model: its features
  // are reused.
  rows.push(['SimCLR encoder (h)', await evaluate(run.model, run.config, splits, run.monitorFeatures)]);
  rows.push(['raw pixels', await evaluate(undefined, run.config, splits)]);
  const random = await createModel({ ...run.config, seed: run.config.seed + SEED_STREAMS.randomEncoder });
  random.eval();
  rows.push(['random encoder', await evaluate(random, run.config, splits)]);
  console.log('features             linear probe  kNN (k=' + run.config.knnK + ')');
  for (const [name, e] of rows) {
    console.log(`${name.padEnd(20)} ${(100 * e.linearProbe.testAccuracy).toFixed(2).padStart(11)}%  ${(100 * e.knnAccuracy).toFixed(2).padStart(8)}%`);
  }
  const [ours, ...baselines] = rows.map(([, e]) => e);
  const points = (a: number, b: number) => `${a >= b ? '+' : ''}${(100 * (a - b)).toFixed(2)}`;
  console.log(`SimCLR vs ${baselines.map((b, i) => `${rows[i + 1][0]}: probe ${points(ours.linearProbe.testAccuracy, b.linearProbe.testAccuracy)}, ` +
    `kNN ${points(ours.knnAccuracy, b.knnAccuracy)} points`).join('; ')}`);
  const lastEpoch = run.records.filter((r) => !('step' in r)).pop();
  console.log(`\npretraining took ${trainSeconds.toFixed(0)} s, ${run.steps} steps; last epoch's mean loss ${lastEpoch?.loss.toFixed(4)}`);
  // The report again, now with the baselines on the kNN chart and the three probes as bars and in its table.
  await writeReport(run.config.out, readMetrics(run.config.out), quickstartReport(run.config, rows, splits, trainSeconds));
  console.log(`report: ${run.reportPath}`);
}
