'use strict';
// The quickstart's recipe search (issue 15): runs one SimCLR recipe (the quickstart recipe plus JSON overrides), then
// evaluates its encoder with the quickstart's fixed probe protocol (10 000 training-split images, the 10 000 official
// test images; kNN k = 200 and the linear probe on features h), and prints one table row: settings, steps, wall time,
// images/s, the kNN monitor curve per epoch, kNN and probe. Each result is also appended to bench/out/recipes.jsonl.
//
//   npm run bench -- recipes '{"batchSize":128,"temperature":0.5}'   one recipe
//   npm run bench -- recipes '{"stem":"cifar"}' --baselines          also the raw-pixel and random-encoder rows
//   npm run bench -- recipes '{...}' --probe 5000                    a smaller probe (5000/5000) while searching
//   npm run bench -- recipes '{...}' --keep runs/r1                  keep the run's folder (checkpoints) there
//   npm run bench -- recipes --table                                 bench/out/recipes.jsonl as a markdown table
//
// Wall times depend on the machine's load (uptime is recorded with each row); accuracies do not.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { runTraining, evaluate, createModel, validateRunConfig, evaluationSplits, SEED_STREAMS } = require('../dist');
const { QUICKSTART_CONFIG, quickstartSplits } = require('../dist/quickstart');
const { fmt } = require('./common');

const RESULTS = path.join(__dirname, 'out', 'recipes.jsonl');

function parseArgs(argv) {
  const args = { overrides: {}, baselines: false, probe: undefined, table: false, label: undefined, keep: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--baselines') args.baselines = true;
    else if (a === '--table') args.table = true;
    else if (a === '--probe') args.probe = Number(argv[++i]);
    else if (a === '--label') args.label = argv[++i];
    else if (a === '--keep') args.keep = argv[++i];
    else args.overrides = { ...args.overrides, ...JSON.parse(fs.existsSync(a) ? fs.readFileSync(a, 'utf8') : a) };
  }
  return args;
}

const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

/** The settings of `config` that differ from the quickstart recipe, as `key=value` (the row's name). */
function describe(config) {
  const base = validateRunConfig({ ...QUICKSTART_CONFIG });
  const skip = new Set(['out', 'knnEvery', 'evalSubset', 'progress']);
  return Object.keys(config).filter((k) => !skip.has(k) && config[k] !== base[k]).map((k) => `${k}=${config[k]}`).join(' ') || 'quickstart recipe';
}

/** The same splits for every row: the quickstart's fixed protocol, or a seeded n/n subset while searching. */
function splitsFor(config, probe) {
  return probe ? evaluationSplits({ ...config, evalSubset: probe }) : quickstartSplits(config);
}

async function main() {
  const args = parseArgs(process.argv.slice(3));
  if (args.table) return printMarkdown();
  const out = args.keep ?? path.join(os.tmpdir(), `simclr-recipe-${process.pid}`);
  // The kNN monitor during training uses the run's evaluation splits: the same protocol as the final rows. The run
  // always writes to its own folder (a temporary one, or --keep's), never to the `out` a config file names.
  const config = validateRunConfig({ ...QUICKSTART_CONFIG, ...args.overrides, out, evalSubset: args.probe });
  const splits = splitsFor(config, args.probe);
  const row = {
    label: args.label ?? describe(config), overrides: args.overrides, config, probe: `${splits.bank.length}/${splits.query.length}`,
    loadBefore: load(), date: new Date().toISOString(),
  };
  console.error(`recipe: ${row.label}; probe ${row.probe}; load ${row.loadBefore}`);
  const started = Date.now();
  const run = await runTraining(config, { progress: 'plain' });
  row.trainSeconds = (Date.now() - started) / 1000;
  row.steps = run.steps;
  const steps = run.records.filter((r) => 'step' in r);
  const rates = steps.slice(3).map((r) => r.imagesPerSecond).sort((a, b) => a - b);
  row.imagesPerSecond = rates.length ? rates[Math.floor(rates.length / 2)] : NaN;
  row.knnCurve = run.records.filter((r) => !('step' in r)).map((r) => r.knnAccuracy).filter((a) => a !== undefined);
  row.epochLoss = run.records.filter((r) => !('step' in r)).map((r) => r.loss);
  const evalStart = Date.now();
  run.model.eval();
  const ours = await evaluate(run.model, run.config, splits);
  row.evalSeconds = (Date.now() - evalStart) / 1000;
  row.knn = ours.knnAccuracy;
  row.probeAccuracy = ours.linearProbe.testAccuracy;
  row.probeTrainAccuracy = ours.linearProbe.trainAccuracy;
  if (args.baselines) {
    const raw = await evaluate(undefined, run.config, splits);
    const random = await createModel({ ...run.config, seed: run.config.seed + SEED_STREAMS.randomEncoder });
    random.eval();
    const rand = await evaluate(random, run.config, splits);
    row.baselines = {
      raw: { knn: raw.knnAccuracy, probe: raw.linearProbe.testAccuracy, probeTrain: raw.linearProbe.trainAccuracy },
      random: { knn: rand.knnAccuracy, probe: rand.linearProbe.testAccuracy, probeTrain: rand.linearProbe.trainAccuracy },
    };
  }
  row.loadAfter = load();
  fs.mkdirSync(path.dirname(RESULTS), { recursive: true });
  fs.appendFileSync(RESULTS, JSON.stringify(row) + '\n');
  if (!args.keep) fs.rmSync(out, { recursive: true, force: true });
  console.log(formatRow(row));
  if (row.baselines) {
    console.log(`  raw pixels      probe ${fmt(100 * row.baselines.raw.probe)}  kNN ${fmt(100 * row.baselines.raw.knn)}`);
    console.log(`  random encoder  probe ${fmt(100 * row.baselines.random.probe)}  kNN ${fmt(100 * row.baselines.random.knn)}`);
  }
}

function formatRow(r) {
  return [r.label, `probe ${r.probe}`, `steps ${r.steps}`, `train ${fmt(r.trainSeconds, 0)} s`, `${fmt(r.imagesPerSecond, 1)} img/s`,
    `kNN/epoch ${r.knnCurve.map((a) => fmt(100 * a)).join(' ')}`, `kNN ${fmt(100 * r.knn)}`, `probe ${fmt(100 * r.probeAccuracy)} (train ${fmt(100 * r.probeTrainAccuracy)})`,
    `load ${r.loadBefore} -> ${r.loadAfter}`].join(' | ');
}

function printMarkdown() {
  const rows = fs.readFileSync(RESULTS, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  console.log('| recipe | probe split | steps | train s | img/s | kNN per epoch | kNN | probe | load |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.label} | ${r.probe} | ${r.steps} | ${fmt(r.trainSeconds, 0)} | ${fmt(r.imagesPerSecond, 1)} | ` +
      `${r.knnCurve.map((a) => fmt(100 * a)).join(' → ')} | ${fmt(100 * r.knn)} | ${fmt(100 * r.probeAccuracy)} | ${r.loadBefore} |`);
    if (r.baselines) {
      console.log(`| raw pixels (same split) | ${r.probe} | | | | | ${fmt(100 * r.baselines.raw.knn)} | ${fmt(100 * r.baselines.raw.probe)} | |`);
      console.log(`| random encoder (same split) | ${r.probe} | | | | | ${fmt(100 * r.baselines.random.knn)} | ${fmt(100 * r.baselines.random.probe)} | |`);
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
