/**
 * The main job (`npm start`): pretrain SimCLR on Fashion-MNIST within about ten minutes on a 2-core CPU, then put
 * the linear probe on its frozen features beside the same probe on raw pixels and on a randomly initialised encoder.
 */
import { doctor, formatDoctor } from './doctor';
import { QUICKSTART_CONFIG, RunConfig, SEED_STREAMS, validateRunConfig } from './train/config';
import { runTraining } from './train/run';
import { createModel } from './train/run-model';
import { evaluate, evaluationSplits, Evaluation } from './eval/evaluate';
import { readMetrics, writeReport } from './train/report';
import { formatDuration } from './train/progress';

/** The quick recipe; see train/config.ts. */
export { QUICKSTART_CONFIG } from './train/config';

export async function quickstart(overrides: Partial<RunConfig>, progress: 'auto' | 'plain' | 'none'): Promise<void> {
  console.log(formatDoctor(doctor()));
  const config = validateRunConfig({ ...QUICKSTART_CONFIG, ...overrides });
  console.log(`\npretraining SimCLR: ${config.backbone} (${config.stem} stem), ${config.subset ?? 'all'} Fashion-MNIST images, ` +
    `${config.epochs} epochs, batch ${config.batchSize}, ${config.imageSize} px views -> ${config.out}`);
  const started = Date.now();
  // The main job starts afresh each time (its folder is its own): a previous quickstart's run is replaced.
  const run = await runTraining(config, { progress, handleSigint: true, overwrite: true });
  const trainSeconds = (Date.now() - started) / 1000;
  if (run.interrupted) {
    console.log(`interrupted: ${run.checkpoint} holds the run; continue with simclr train --resume --out ${config.out}`);
    return;
  }
  const splits = evaluationSplits(run.config)!;
  console.log(`\nlinear probes on frozen features: ${splits.bank.length} train / ${splits.query.length} test images`);
  const rows: [string, Evaluation][] = [];
  run.model.eval();
  rows.push(['SimCLR encoder (h)', await evaluate(run.model, run.config, splits)]);
  rows.push(['raw pixels', await evaluate(undefined, run.config, splits)]);
  const random = await createModel({ ...run.config, seed: run.config.seed + SEED_STREAMS.randomEncoder });
  random.eval();
  rows.push(['random encoder', await evaluate(random, run.config, splits)]);
  console.log('features             linear probe  kNN (k=' + run.config.knnK + ')');
  for (const [name, e] of rows) {
    console.log(`${name.padEnd(20)} ${(100 * e.linearProbe.testAccuracy).toFixed(2).padStart(11)}%  ${(100 * e.knnAccuracy).toFixed(2).padStart(8)}%`);
  }
  const lastEpoch = run.records.filter((r) => !('step' in r)).pop();
  console.log(`\npretraining took ${trainSeconds.toFixed(0)} s, ${run.steps} steps; last epoch's mean loss ${lastEpoch?.loss.toFixed(4)}`);
  // The report again, now with the baselines on the kNN chart and the probes in its table.
  const percent = (x: number) => `${(100 * x).toFixed(2)}%`;
  await writeReport(run.config.out, readMetrics(run.config.out), {
    settings: { ...run.config },
    baselines: { [rows[1][0]]: rows[1][1].knnAccuracy, [rows[2][0]]: rows[2][1].knnAccuracy },
    results: Object.fromEntries(rows.map(([name, e]) => [`linear probe: ${name}`, percent(e.linearProbe.testAccuracy)])),
    timing: { 'pretraining wall time': formatDuration(trainSeconds) },
  });
  console.log(`report: ${run.reportPath}`);
}
