'use strict';
// The last step of bench/gpu/run.sh: the benchmarks' result lines, the steps' exit statuses and the jest summaries into
// $OUT/results.json and $OUT/summary.md (issue 13's targets: met or not, by how much), printed last. Exits 1 when a step
// failed or a result is missing, so that the dry run fails CI when the script breaks.
// Usage: node bench/gpu/summarize.js results.jsonl phases.tsv OUT_DIR DRY(0|1)
const fs = require('fs');
const path = require('path');

const [resultsFile, phasesFile, out, dryFlag] = process.argv.slice(2);
const dry = dryFlag === '1';
const results = fs.readFileSync(resultsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const phases = fs.readFileSync(phasesFile, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [name, status, seconds] = l.split('\t');
  return { name, status: /^\d+$/.test(status) ? Number(status) : status, seconds: Number(seconds) };
});
const env = fs.existsSync(path.join(out, 'env.txt')) ? fs.readFileSync(path.join(out, 'env.txt'), 'utf8') : '';
const jestText = fs.existsSync(path.join(out, 'jest.txt')) ? fs.readFileSync(path.join(out, 'jest.txt'), 'utf8') : '';
// jest's closing lines, e.g. "Tests:       3 failed, 1 skipped, 120 passed, 124 total"
const jest = [...jestText.matchAll(/^Tests:\s+(.*)$/gm)].map((m) => {
  const count = (word) => Number((m[1].match(new RegExp(`(\\d+) ${word}`)) || [0, 0])[1]);
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), total: count('total') };
});
const failedTests = [...new Set([...jestText.matchAll(/^\s*● (.+)$/gm)].map((m) => m[1].trim()))];

const find = (bench, pred = () => true) => results.find((r) => r.bench === bench && pred(r));
const trainStep = find('train-step');
const ntSmall = find('nt-xent', (r) => r.peerSeconds !== null);
const ntLarge = find('nt-xent', (r) => r.peerSeconds === null);
const augment = find('augment');
const endToEnd = find('end-to-end');

const f = (x, digits = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const gib = (bytes) => (typeof bytes === 'number' ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : 'n/a');
const pct = (x) => (typeof x === 'number' ? `${(100 * x).toFixed(1)} %` : 'n/a');
/** "met (1.23x, 23 % over)" / "missed by 12 %": how far a measured value is from its target. */
function verdict(value, target, higherIsBetter = true) {
  if (dry) return 'dry run: not evaluated';
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'not measured';
  const margin = higherIsBetter ? value / target - 1 : target / value - 1;
  return margin >= 0 ? `met (${(100 * margin).toFixed(0)} % better)` : `missed by ${(-100 * margin).toFixed(0)} %`;
}

const gpu = (env.match(/^name, memory\.total.*\n(.+)$/m) || [])[1]?.split(',')[0].trim() ?? 'cpu';
const date = new Date().toISOString().slice(0, 10);
const folder = `bench/gpu/results/${date}-${gpu.toLowerCase().replace(/^nvidia\s+/, '').replace(/[^a-z0-9]+/g, '-')}`;

const rows = [];
if (trainStep) {
  const c = trainStep.config;
  rows.push([`training step, ${c.backbone} ${c.size} px, batch ${c.batch}, ${c.precision} ${c.memoryFormat}`,
    `${f(trainStep.oursImagesPerSecond, 1)} img/s, peak ${gib(trainStep.oursPeakBytes)}`,
    `${f(trainStep.peerImagesPerSecond, 1)} img/s, peak ${gib(trainStep.peerPeakBytes)}`,
    `${f(trainStep.ratio)}x (${f(trainStep.ratioMin)}-${f(trainStep.ratioMax)})`, '>= 1.0x', verdict(trainStep.ratio, 1)]);
}
if (ntSmall) {
  rows.push([`NT-Xent fwd+bwd, N = ${ntSmall.n} (${ntSmall.rows} rows), d = ${ntSmall.d}, fp32`,
    `${f(1e3 * ntSmall.oursSeconds, 1)} ms, peak ${gib(ntSmall.oursPeakBytes)}`,
    `${f(1e3 * ntSmall.peerSeconds, 1)} ms, peak ${gib(ntSmall.peerPeakBytes)}`,
    `${f(ntSmall.ratio)}x; memory ${f(ntSmall.memoryFraction, 3)} of the peer's`, '>= 1.0x, <= 0.125 memory',
    `${verdict(ntSmall.ratio, 1)}; memory ${verdict(ntSmall.memoryFraction, 0.125, false)}`]);
}
if (ntLarge) {
  rows.push([`NT-Xent fwd+bwd, N = ${ntLarge.n} (${ntLarge.rows} rows)`, `${f(ntLarge.oursSeconds, 2)} s, peak ${gib(ntLarge.oursPeakBytes)}, loss ${f(ntLarge.oursLoss, 4)}`,
    `not run: ${ntLarge.peerSkipped}`, '', 'completes', Number.isFinite(ntLarge.oursLoss) ? 'met (completed)' : 'missed (no finite loss)']);
}
if (augment) {
  const c = augment.config;
  rows.push([`augmentation, uint8 ${c.batch} x ${c.base} px -> 2 views of ${c.size} px`,
    `${f(augment.oursImagesPerSecondFromHost, 0)} img/s from ${c.pinned ? 'pinned ' : ''}host (${f(augment.oursImagesPerSecondOnDevice, 0)} from device memory)`,
    `${f(augment.peerImagesPerSecond, 0)} img/s (${augment.peerMethod})`, `${f(augment.ratio, 1)}x`, '>= 30000 img/s',
    verdict(augment.oursImagesPerSecondFromHost, 30000)]);
}
if (endToEnd) {
  const c = endToEnd.config;
  rows.push([`end to end from ${c.base} px JPEGs, ${c.backbone}, ${c.size} px views, batch ${c.batch}, ${c.precision}`,
    `${f(endToEnd.oursImagesPerSecond, 1)} img/s; GPU waits ${pct(endToEnd.oursGpuWaitFraction)} (idle by nvidia-smi ${pct(endToEnd.oursGpuIdleFromUtilisation)}); ${c.threadpool} decode threads`,
    `${f(endToEnd.peerImagesPerSecond, 1)} img/s; GPU waits ${pct(endToEnd.peerGpuWaitFraction)} (idle ${pct(endToEnd.peerGpuIdleFromUtilisation)}); DataLoader ${c.workers} workers`,
    `${f(endToEnd.ratio)}x`, 'report', '']);
}

const expected = ['node', 'files', 'environment', 'device-tests', 'bench-train-step', 'bench-nt-xent', 'bench-augment', 'bench-end-to-end', 'suite'];
const requested = (name) => phases.some((p) => p.name === name && p.status === 'requested-skip');
const problems = [
  ...phases.filter((p) => p.status !== 0 && p.status !== 'requested-skip').map((p) => `step ${p.name}: ${p.status === 'skipped' ? 'skipped (time budget)' : p.status === 124 || p.status === 137 ? 'stopped at its time limit' : `exit ${p.status}`}`),
  ...expected.filter((name) => !phases.some((p) => p.name === name)).map((name) => `step ${name}: did not run`),
  ...[['train-step', trainStep], ['nt-xent', ntSmall], ['nt-xent', ntLarge], ['augment', augment], ['end-to-end', endToEnd]]
    .filter(([name, r]) => !r && !requested(`bench-${name}`)).map(([name]) => `no ${name} result`),
];

const lines = [
  `# simclr GPU run (issue 13)${dry ? ': DRY RUN on the CPU, tiny sizes' : ''}`,
  '',
  `${date}, ${gpu}. Results folder in the repo: \`${folder}/\` (copy this file, results.json, env.txt, jest.txt, log.txt).`,
  '',
  '| measurement | simclr | PyTorch eager | ratio | target | verdict |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.join(' | ')} |`),
  '',
  'Ratios are PyTorch time / simclr time (above 1: simclr is faster); memory is CUDA allocator peaks (tensors).',
  '',
  '## Tests',
  ...jest.map((j, i) => `- ${i === 0 ? 'device tests' : 'rest of the suite'}: ${j.passed} passed, ${j.failed} failed, ${j.skipped} skipped (of ${j.total})`),
  ...(failedTests.length ? ['', 'Failed:', ...failedTests.slice(0, 40).map((t) => `- ${t}`)] : []),
  '',
  '## Steps',
  ...phases.map((p) => `- ${p.name}: ${p.status === 0 ? 'ok' : p.status} in ${p.seconds} s`),
  ...(problems.length ? ['', '## Problems', ...problems.map((p) => `- ${p}`)] : []),
];
const summary = lines.join('\n') + '\n';
fs.writeFileSync(path.join(out, 'summary.md'), summary);
fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify({ date, gpu, dry, folder, phases, jest, failedTests, results }, null, 2) + '\n');
process.stdout.write(summary);
process.exit(problems.length || jest.some((j) => j.failed > 0) ? 1 : 0);
