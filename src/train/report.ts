/**
 * The training report a person opens after a run: an SVG (loss against step, kNN monitor accuracy against epoch)
 * rendered headless with vega-lite + vega, and an HTML page embedding it above a table of the final numbers.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vm from 'vm';
import { pathToFileURL } from 'url';
import { writeFileAtomic } from '../atomic-file';
import { invalid } from '../errors';

/** One optimisation step, as logged per step in metrics.jsonl. */
export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  imagesPerSecond: number;
}

/** One finished epoch: its mean loss and, on monitor epochs, the kNN accuracy. */
export interface EpochRecord {
  epoch: number;
  loss: number;
  knnAccuracy?: number;
}

/** A metrics record; step records are told apart by their `step` field. */
export type MetricsRecord = StepRecord | EpochRecord;

export interface ReportOptions {
  /** Page and chart heading (default 'SimCLR training report'). */
  title?: string;
  /** Extra rows for the table of final numbers, e.g. `{ 'linear probe top-1': 0.87 }`. */
  summary?: Record<string, string | number>;
  /** Features compared on the same splits (the main job's three rows); see {@link FeatureComparison}. */
  comparison?: FeatureComparison[];
}

/** Loss curves longer than this are averaged over windows of consecutive steps, so the SVG stays small. */
const MAX_PLOTTED_STEPS = 2000;

interface VegaLite {
  compile(spec: object): { spec: object };
}
interface VegaView {
  toSVG(): Promise<string>;
  finalize(): void;
}
interface Vega {
  parse(spec: object): unknown;
  View: new (runtime: unknown, options: { renderer: 'none' }) => VegaView;
}

/**
 * vega and vega-lite are ES modules with top-level await, which require() cannot load, and TypeScript turns import()
 * into require() in CommonJS output, so the import is built at run time. Inside a vm context (jest) that import has no
 * loader; there the main context's loader is asked for explicitly.
 */
async function importEsm<T>(specifier: string): Promise<T> {
  const url = pathToFileURL(require.resolve(specifier)).href;
  try {
    return (await (new Function('url', 'return import(url)') as (url: string) => Promise<T>)(url));
  } catch (err) {
    if (!/^ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING/.test(String((err as { code?: unknown }).code))) throw err;
    const script = new vm.Script('(url) => import(url)', { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
    return (await (script.runInThisContext() as (url: string) => Promise<T>)(url));
  }
}

function isStepRecord(record: MetricsRecord): record is StepRecord {
  return (record as StepRecord).step !== undefined;
}

function checkRecords(records: unknown): asserts records is MetricsRecord[] {
  if (!Array.isArray(records)) throw invalid('an array of metrics records', 'records', records);
  if (records.length === 0) throw new RangeError('Expected at least one metrics record for records but received none');
  records.forEach((record: unknown, i) => {
    if (typeof record !== 'object' || record === null) throw invalid('a metrics record object', `records[${i}]`, record);
    const fields = isStepRecord(record as MetricsRecord) ? ['step', 'epoch', 'loss', 'lr', 'imagesPerSecond'] : ['epoch', 'loss'];
    for (const field of fields) {
      const value = (record as Record<string, unknown>)[field];
      if (typeof value !== 'number') throw invalid('a number', `records[${i}].${field}`, value);
    }
    const knn = (record as EpochRecord).knnAccuracy;
    if (knn !== undefined && typeof knn !== 'number') throw invalid('a number', `records[${i}].knnAccuracy`, knn);
  });
}

/** Mean of each window of consecutive steps when there are more than MAX_PLOTTED_STEPS. */
function lossCurve(steps: StepRecord[]): { step: number; loss: number }[] {
  const window = Math.ceil(steps.length / MAX_PLOTTED_STEPS);
  const points: { step: number; loss: number }[] = [];
  for (let start = 0; start < steps.length; start += window) {
    const slice = steps.slice(start, start + window);
    points.push({
      step: slice.reduce((sum, r) => sum + r.step, 0) / slice.length,
      loss: slice.reduce((sum, r) => sum + r.loss, 0) / slice.length,
    });
  }
  return points;
}

/** The vega-lite spec: loss against step (or epoch when no step was logged) and, when monitored, kNN accuracy. */
export function reportSpec(records: MetricsRecord[], title = 'SimCLR training report', comparison?: FeatureComparison[]): object {
  checkRecords(records);
  const steps = records.filter(isStepRecord);
  const epochs = records.filter((r): r is EpochRecord => !isStepRecord(r));
  const xField = steps.length > 0 ? 'step' : 'epoch';
  const lossChart = {
    title: 'Training loss',
    width: 560,
    height: 220,
    data: { values: steps.length > 0 ? lossCurve(steps) : epochs.map((r) => ({ epoch: r.epoch, loss: r.loss })) },
    mark: { type: 'line', color: '#1f77b4' },
    encoding: {
      x: { field: xField, type: 'quantitative', title: xField },
      y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
    },
  };
  const monitored = epochs.filter((r) => r.knnAccuracy !== undefined);
  const knnChart = {
    title: 'kNN monitor accuracy',
    width: 560,
    height: 160,
    data: { values: monitored.map((r) => ({ epoch: r.epoch, knnAccuracy: r.knnAccuracy })) },
    mark: { type: 'line', color: '#d62728', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field: 'knnAccuracy', type: 'quantitative', title: 'kNN accuracy', scale: { zero: false }, axis: { format: '.0%' } },
    },
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    vconcat: [lossChart, ...(monitored.length > 0 ? [comparison ? withKnnBaselines(knnChart, comparison) : knnChart] : []),
      ...(comparison ? [probeBarChart(comparison)] : [])],
    config: { background: 'white' },
  };
}

/**
 * One feature set of a comparison on the same evaluation splits, e.g. the main job's SimCLR encoder, raw pixels and a
 * random encoder. The first is the trained one: the others become reference lines on its kNN curve.
 */
export interface FeatureComparison {
  name: string;
  /** Linear-probe top-1 accuracy on the test split, in [0, 1]. */
  linearProbe: number;
  /** kNN top-1 accuracy on the test split, in [0, 1]. */
  knn: number;
}

function checkComparison(comparison: unknown): asserts comparison is FeatureComparison[] | undefined {
  if (comparison === undefined) return;
  if (!Array.isArray(comparison) || comparison.length === 0) throw invalid('a non-empty array of feature comparisons', 'comparison', comparison);
  comparison.forEach((row: unknown, i) => {
    if (typeof row !== 'object' || row === null) throw invalid('a feature comparison object', `comparison[${i}]`, row);
    const { name, linearProbe, knn } = row as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') throw invalid('a non-empty string', `comparison[${i}].name`, name);
    for (const [field, value] of [['linearProbe', linearProbe], ['knn', knn]] as const) {
      if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw invalid('an accuracy in [0, 1]', `comparison[${i}].${field}`, value);
    }
  });
}

/** The kNN monitor chart with each baseline's kNN accuracy (every row after the first) as a dashed horizontal line. */
function withKnnBaselines(knnChart: { title: string; width: number; height: number; data: object; mark: object; encoding: object },
  comparison: FeatureComparison[]): object {
  const baselines = comparison.slice(1).map((row) => ({ name: row.name, knnAccuracy: row.knn, label: `${row.name} ${(100 * row.knn).toFixed(2)}%` }));
  const rule = { field: 'knnAccuracy', type: 'quantitative' };
  return {
    title: 'kNN monitor accuracy (dashed: the same kNN on other features)',
    width: knnChart.width,
    height: knnChart.height,
    layer: [
      { data: knnChart.data, mark: knnChart.mark, encoding: knnChart.encoding },
      { data: { values: baselines }, mark: { type: 'rule', strokeDash: [6, 4], color: '#7f7f7f' }, encoding: { y: rule } },
      { data: { values: baselines }, mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#555' }, encoding: { y: rule, x: { value: 0 }, text: { field: 'label' } } },
    ],
  };
}

/** Horizontal bars of the linear-probe accuracy of each feature set, from 0, each labelled with its value. */
function probeBarChart(comparison: FeatureComparison[]): object {
  const values = comparison.map((row) => ({ features: row.name, accuracy: row.linearProbe, label: `${(100 * row.linearProbe).toFixed(2)}%` }));
  const y = { field: 'features', type: 'nominal', sort: null, title: null };
  return {
    title: 'Linear probe accuracy (same splits for each)',
    width: 560,
    height: 28 * values.length,
    data: { values },
    layer: [
      { mark: { type: 'bar', color: '#1f77b4' }, encoding: { y, x: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%' } } } },
      { mark: { type: 'text', align: 'right', dx: -4, color: 'white' }, encoding: { y, x: { field: 'accuracy', type: 'quantitative' }, text: { field: 'label' } } },
    ],
  };
}

/** Renders the report charts to an SVG string (headless: no canvas, no browser). */
export async function renderReportSvg(records: MetricsRecord[], title?: string, comparison?: FeatureComparison[]): Promise<string> {
  checkComparison(comparison);
  const spec = reportSpec(records, title, comparison);
  const [vegaLite, vega] = await Promise.all([importEsm<VegaLite>('vega-lite'), importEsm<Vega>('vega')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function formatNumber(value: number, kind: 'accuracy' | 'plain' | 'rate'): string {
  if (!Number.isFinite(value)) return String(value);
  if (kind === 'accuracy') return `${(value * 100).toFixed(2)}%`;
  if (kind === 'rate') return value.toExponential(3);
  return Number(value.toPrecision(5)).toString();
}

/** The rows of the final-numbers table. */
function finalNumbers(records: MetricsRecord[], summary: Record<string, string | number>): [string, string][] {
  const steps = records.filter(isStepRecord);
  const epochs = records.filter((r): r is EpochRecord => !isStepRecord(r));
  const rows: [string, string][] = [];
  if (steps.length > 0) {
    const last = steps[steps.length - 1];
    rows.push(['steps', String(last.step)], ['final step loss', formatNumber(last.loss, 'plain')],
      ['final learning rate', formatNumber(last.lr, 'rate')],
      ['mean images/s', formatNumber(steps.reduce((sum, r) => sum + r.imagesPerSecond, 0) / steps.length, 'plain')]);
  }
  if (epochs.length > 0) {
    const last = epochs[epochs.length - 1];
    rows.push(['epochs', String(last.epoch)], ['final epoch loss', formatNumber(last.loss, 'plain')]);
  }
  const monitored = epochs.filter((r) => r.knnAccuracy !== undefined);
  if (monitored.length > 0) {
    const best = monitored.reduce((a, b) => (b.knnAccuracy! > a.knnAccuracy! ? b : a));
    rows.push(['final kNN accuracy', formatNumber(monitored[monitored.length - 1].knnAccuracy!, 'accuracy')],
      ['best kNN accuracy', `${formatNumber(best.knnAccuracy!, 'accuracy')} (epoch ${best.epoch})`]);
  }
  for (const [name, value] of Object.entries(summary)) {
    rows.push([name, typeof value === 'number' ? formatNumber(value, 'plain') : value]);
  }
  return rows;
}

/**
 * Writes `<runDir>/report.svg` and `<runDir>/report.html` (the SVG inline plus a table of final numbers) from the
 * run's metrics records, atomically, and returns the HTML path.
 */
export async function writeReport(runDir: string, records: MetricsRecord[], options: ReportOptions = {}): Promise<string> {
  if (typeof runDir !== 'string' || runDir === '') throw invalid('a directory path', 'runDir', runDir);
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const title = options.title ?? 'SimCLR training report';
  if (typeof title !== 'string') throw invalid('a string', 'title', title);
  const summary = options.summary ?? {};
  if (typeof summary !== 'object' || summary === null) throw invalid('an object', 'summary', summary);
  const svg = await renderReportSvg(records, title, options.comparison);
  const rows = finalNumbers(records, summary).map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`);
  const html = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(title)}</title>`,
    '<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-top:1em}',
    'th,td{padding:.3em 1em;border-bottom:1px solid #ddd;text-align:left}td{font-variant-numeric:tabular-nums}</style>',
    '</head><body>',
    `<h1>${escapeHtml(title)}</h1>`,
    svg,
    '<h2>Final numbers</h2>',
    `<table>${rows.join('')}</table>`,
    '</body></html>',
    '',
  ].join('\n');
  await fs.promises.mkdir(runDir, { recursive: true });
  const svgPath = path.join(runDir, 'report.svg');
  const htmlPath = path.join(runDir, 'report.html');
  await writeFileAtomic(svgPath, [svg]);
  await writeFileAtomic(htmlPath, [html]);
  return htmlPath;
}
