/**
 * The training report a person opens after a run: an SVG (loss against step with a smoothed line, the learning rate,
 * kNN monitor accuracy against epoch with baselines) rendered headless with vega-lite + vega, and an HTML page showing
 * it at full width above one table of the run's settings, result and timing.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vm from 'vm';
import { pathToFileURL } from 'url';
import { makeFolder, writeFileAtomic } from '../atomic-file';
import { invalid } from '../errors';
import { formatDuration } from './progress';

/** One optimisation step, as logged per step in metrics.jsonl. */
export interface StepRecord {
  /** Steps done, this one included (1 = the first). */
  step: number;
  /** The epoch the step belongs to (1 = the first). */
  epoch: number;
  loss: number;
  lr: number;
  imagesPerSecond: number;
  /** Images in the step's batch (absent in logs of older versions). */
  images?: number;
}

/** One finished epoch: its mean loss and, on monitor epochs, the kNN accuracy. */
export interface EpochRecord {
  /** 1 = the first epoch. */
  epoch: number;
  loss: number;
  knnAccuracy?: number;
}

/** A metrics record; step records are told apart by their `step` field. */
export type MetricsRecord = StepRecord | EpochRecord;

/**
 * The start of a training session (a run, or a resume of it) in metrics.jsonl: the step it starts from and what the
 * run's `'auto'` settings resolved to in it (device, precision, memory format, backend, threads).
 */
export interface SessionRecord {
  session: { step: number } & Record<string, unknown>;
}

/** A value in the report's table. */
export type ReportValue = string | number | boolean;

export interface ReportOptions {
  /** Page and chart heading (default 'SimCLR training report'). */
  title?: string;
  /** The run's settings (e.g. its RunConfig), listed under "Settings". */
  settings?: Record<string, ReportValue | undefined>;
  /** Further results, listed under "Result" after the ones read from the records, e.g. `{ 'linear probe top-1': 0.87 }`. */
  results?: Record<string, ReportValue>;
  /**
   * Reference kNN accuracies (e.g. `{ 'raw pixels': 0.743, 'random encoder': 0.71 }`): drawn as labelled lines on the
   * kNN chart and listed under "Result".
   */
  baselines?: Record<string, number>;
  /**
   * Linear-probe accuracies of feature sets probed on the same splits (e.g. the main job's `{ 'SimCLR encoder (h)': 0.79,
   * 'raw pixels': 0.83, 'random encoder': 0.81 }`), each in [0, 1]: drawn as a bar chart, in the given order.
   */
  probes?: Record<string, number>;
  /** Timing rows, listed under "Timing" after the ones read from the records, e.g. `{ 'wall time': '6m12s' }`. */
  timing?: Record<string, ReportValue>;
  /** @deprecated Extra rows: use `results`. Listed with the results. */
  summary?: Record<string, string | number>;
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

/** Width of each chart in the SVG (the page scales it to its own width) and the colours of the series. */
const CHART_WIDTH = 1000;
const COLORS = { loss: '#9ecae1', smoothed: '#1f77b4', short: '#ff7f0e', lr: '#2ca02c', knn: '#d62728', baseline: '#7f7f7f', probe: '#1f77b4' };

/** Mean of each window of consecutive points when there are more than MAX_PLOTTED_STEPS. */
function thinned<T extends { step: number }>(points: T[], value: (p: T) => number): { step: number; value: number }[] {
  const window = Math.ceil(points.length / MAX_PLOTTED_STEPS);
  const out: { step: number; value: number }[] = [];
  for (let start = 0; start < points.length; start += window) {
    const slice = points.slice(start, start + window);
    out.push({ step: slice.reduce((sum, r) => sum + r.step, 0) / slice.length, value: slice.reduce((sum, r) => sum + value(r), 0) / slice.length });
  }
  return out;
}

/**
 * Steps whose batch was smaller than the run's usual one (a short last batch: fewer negatives, so a loss on another
 * scale). Logs without batch sizes have none.
 */
function shortSteps(steps: StepRecord[]): Set<number> {
  const sizes = steps.map((r) => r.images).filter((n): n is number => n !== undefined);
  if (sizes.length === 0) return new Set();
  const full = Math.max(...sizes);
  return new Set(steps.filter((r) => r.images !== undefined && r.images < full).map((r) => r.step));
}

/** A centred moving average over about a twentieth of the run (3 to 201 points; none below 10 points). */
function smoothed(points: { step: number; value: number }[]): { step: number; value: number }[] {
  const half = points.length < 10 ? 0 : Math.max(1, Math.min(100, Math.floor(points.length / 40)));
  return points.map((p, i) => {
    const slice = points.slice(Math.max(0, i - half), i + half + 1);
    return { step: p.step, value: slice.reduce((sum, q) => sum + q.value, 0) / slice.length };
  });
}

/** Decimals for percentages so that ticks over `values` read differently: 72.1%, 72.4% rather than 72%, 72%. */
export function percentDecimals(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite);
  const span = finite.length ? Math.max(...finite) - Math.min(...finite) : 0;
  if (span <= 0) return 1;
  // About five ticks span the range: one more decimal for every tenfold smaller tick step (in percent).
  return Math.max(0, Math.min(3, Math.ceil(-Math.log10((span * 100) / 5))));
}

const stepAxis = { field: 'step', type: 'quantitative', title: 'step', axis: { tickMinStep: 1, format: 'd' } };

/**
 * The vega-lite spec: the loss against step (per step, a smoothed line without short batches, short batches marked),
 * the learning rate against step, and, when monitored, the kNN accuracy against epoch with baseline lines; with
 * `probes`, their linear-probe accuracies as bars. With no step records the loss is plotted against epoch.
 */
export function reportSpec(records: MetricsRecord[], title = 'SimCLR training report', baselines: Record<string, number> = {},
  probes: Record<string, number> = {}): object {
  checkRecords(records);
  const steps = records.filter(isStepRecord);
  const epochs = records.filter((r): r is EpochRecord => !isStepRecord(r));
  const charts: object[] = [];
  const colour = (domain: string[], range: string[]) => ({ scale: { domain, range }, legend: { orient: 'top', title: null, labelLimit: 400 } });
  if (steps.length > 0) {
    const short = shortSteps(steps);
    const full = steps.filter((r) => !short.has(r.step));
    const series = short.size > 0 ? ['loss per step', 'smoothed (full batches)', 'short batch'] : ['loss per step', 'smoothed'];
    const scale = colour(series, [COLORS.loss, COLORS.smoothed, COLORS.short]);
    const y = { field: 'value', type: 'quantitative', title: 'loss', scale: { zero: false } };
    charts.push({
      title: 'Training loss',
      width: CHART_WIDTH,
      height: 260,
      layer: [
        { data: { values: thinned(steps, (r) => r.loss) }, mark: { type: 'line', strokeWidth: 1 }, encoding: { x: stepAxis, y, color: { datum: series[0], ...scale } } },
        { data: { values: smoothed(thinned(full, (r) => r.loss)) }, mark: { type: 'line', strokeWidth: 2.5 }, encoding: { x: stepAxis, y, color: { datum: series[1] } } },
        ...(short.size > 0
          ? [{ data: { values: steps.filter((r) => short.has(r.step)).map((r) => ({ step: r.step, value: r.loss, images: r.images })) },
            mark: { type: 'point', filled: true, size: 50 }, encoding: { x: stepAxis, y, color: { datum: series[2] } } }]
          : []),
      ],
    });
    charts.push({
      title: 'Learning rate',
      width: CHART_WIDTH,
      height: 140,
      data: { values: thinned(steps, (r) => r.lr) },
      mark: { type: 'line', color: COLORS.lr },
      encoding: { x: stepAxis, y: { field: 'value', type: 'quantitative', title: 'learning rate' } },
    });
  } else {
    charts.push({
      title: 'Training loss',
      width: CHART_WIDTH,
      height: 260,
      data: { values: epochs.map((r) => ({ epoch: r.epoch, loss: r.loss })) },
      mark: { type: 'line', color: COLORS.smoothed, point: true },
      encoding: {
        x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } },
        y: { field: 'loss', type: 'quantitative', title: 'loss', scale: { zero: false } },
      },
    });
  }
  const monitored = epochs.filter((r) => r.knnAccuracy !== undefined);
  if (monitored.length > 0) {
    const lines = Object.entries(baselines).map(([name, value]) => ({ name, value }));
    const decimals = percentDecimals([...monitored.map((r) => r.knnAccuracy!), ...lines.map((l) => l.value)]);
    const y = { field: 'value', type: 'quantitative', title: 'kNN accuracy', scale: { zero: false }, axis: { format: `.${decimals}%` } };
    const x = { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1, format: 'd' } };
    charts.push({
      title: 'kNN monitor accuracy',
      width: CHART_WIDTH,
      height: 200,
      layer: [
        { data: { values: monitored.map((r) => ({ epoch: r.epoch, value: r.knnAccuracy })) }, mark: { type: 'line', color: COLORS.knn, point: { color: COLORS.knn } }, encoding: { x, y } },
        ...(lines.length > 0
          ? [
            { data: { values: lines }, mark: { type: 'rule', color: COLORS.baseline, strokeDash: [6, 4] }, encoding: { y } },
            {
              data: { values: lines.map((l) => ({ ...l, label: `${l.name} ${(100 * l.value).toFixed(decimals)}%` })) },
              mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: COLORS.baseline },
              encoding: { y, x: { datum: Math.min(...monitored.map((r) => r.epoch)), type: 'quantitative' }, text: { field: 'label' } },
            },
          ]
          : []),
      ],
    });
  }
  if (Object.keys(probes).length > 0) charts.push(probeBars(probes));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(title ? { title } : {}),
    vconcat: charts,
    config: { background: 'white' },
  };
}

/** Horizontal bars of linear-probe accuracies from 0 to 100 %, one per feature set in the given order, each labelled. */
function probeBars(probes: Record<string, number>): object {
  const values = Object.entries(probes).map(([features, accuracy]) => ({ features, accuracy, label: `${(100 * accuracy).toFixed(2)}%` }));
  const y = { field: 'features', type: 'nominal', sort: null, title: null, axis: { labelLimit: 400 } };
  const x = { field: 'accuracy', type: 'quantitative', title: 'linear probe test accuracy', scale: { domain: [0, 1] }, axis: { format: '.0%' } };
  return {
    title: 'Linear probe accuracy (the same splits for each)',
    width: CHART_WIDTH,
    height: 30 * values.length,
    data: { values },
    layer: [
      { mark: { type: 'bar', color: COLORS.probe }, encoding: { y, x } },
      { mark: { type: 'text', align: 'right', dx: -4, color: 'white' }, encoding: { y, x, text: { field: 'label' } } },
    ],
  };
}

function checkProbes(probes: unknown): void {
  checkRows(probes, 'probes', true);
  for (const [name, value] of Object.entries((probes ?? {}) as Record<string, number>)) {
    if (!(value >= 0 && value <= 1)) throw invalid('an accuracy in [0, 1]', `probes['${name}']`, value);
  }
}

/** Renders the report charts to an SVG string (headless: no canvas, no browser). */
export async function renderReportSvg(records: MetricsRecord[], title?: string, baselines?: Record<string, number>,
  probes?: Record<string, number>): Promise<string> {
  checkProbes(probes);
  const spec = reportSpec(records, title, baselines, probes);
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

const formatValue = (value: ReportValue) => (typeof value === 'number' ? formatNumber(value, 'plain') : String(value));

type Section = 'Settings' | 'Result' | 'Timing';

/**
 * The rows of the report's table, by section: the results read from the records (then the baselines and the results
 * given), the timing read from the records (then the timing given), the settings given. Each name appears once: a row
 * given by the caller replaces a computed one of the same name.
 */
export function reportTable(records: MetricsRecord[], options: ReportOptions = {}): { section: Section; rows: [string, string][] }[] {
  checkRecords(records);
  const table = new Map<string, { section: Section; value: string }>();
  const put = (section: Section, name: string, value: string) => {
    table.delete(name); // one row per name, in the order it was last put
    table.set(name, { section, value });
  };
  for (const [name, value] of Object.entries(options.settings ?? {})) if (value !== undefined) put('Settings', name, formatValue(value));
  const steps = records.filter(isStepRecord);
  const epochs = records.filter((r): r is EpochRecord => !isStepRecord(r));
  const short = shortSteps(steps);
  const full = steps.filter((r) => !short.has(r.step));
  if (steps.length > 0) put('Result', 'steps', String(steps[steps.length - 1].step));
  if (epochs.length > 0) {
    put('Result', 'epochs completed', String(epochs[epochs.length - 1].epoch));
    put('Result', 'final epoch loss', formatNumber(epochs[epochs.length - 1].loss, 'plain'));
  }
  if (full.length > 0) put('Result', 'last full-batch step loss', formatNumber(full[full.length - 1].loss, 'plain'));
  if (short.size > 0) put('Result', 'short batches', `${short.size} (marked, left out of the smoothed loss)`);
  if (steps.length > 0) put('Result', 'final learning rate', formatNumber(steps[steps.length - 1].lr, 'rate'));
  const monitored = epochs.filter((r) => r.knnAccuracy !== undefined);
  if (monitored.length > 0) {
    const best = monitored.reduce((a, b) => (b.knnAccuracy! > a.knnAccuracy! ? b : a));
    put('Result', 'final kNN accuracy', formatNumber(monitored[monitored.length - 1].knnAccuracy!, 'accuracy'));
    put('Result', 'best kNN accuracy', `${formatNumber(best.knnAccuracy!, 'accuracy')} (epoch ${best.epoch})`);
  }
  for (const [name, value] of Object.entries(options.baselines ?? {})) put('Result', `kNN accuracy of ${name}`, formatNumber(value, 'accuracy'));
  for (const [name, value] of Object.entries({ ...(options.summary ?? {}), ...(options.results ?? {}) })) put('Result', name, formatValue(value));
  if (full.length > 0) put('Timing', 'mean images/s (full batches)', formatNumber(full.reduce((sum, r) => sum + r.imagesPerSecond, 0) / full.length, 'plain'));
  const timed = steps.filter((r) => r.images !== undefined && r.imagesPerSecond > 0);
  if (timed.length > 0) put('Timing', 'time in training steps', formatDuration(timed.reduce((sum, r) => sum + r.images! / r.imagesPerSecond, 0)));
  for (const [name, value] of Object.entries(options.timing ?? {})) put('Timing', name, formatValue(value));
  return (['Result', 'Timing', 'Settings'] as const).map((section) => ({
    section,
    rows: [...table].filter(([, row]) => row.section === section).map(([name, row]): [string, string] => [name, row.value]),
  })).filter((s) => s.rows.length > 0);
}

function checkRows(value: unknown, name: string, numbersOnly = false): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('an object', name, value);
  for (const [key, v] of Object.entries(value)) {
    const ok = numbersOnly ? typeof v === 'number' : v === undefined || ['string', 'number', 'boolean'].includes(typeof v);
    if (!ok) throw invalid(numbersOnly ? 'a number' : 'a string, number or boolean', `${name}['${key}']`, v);
  }
}

/** Every record of a run's metrics.jsonl (one per line); a line that is not JSON (cut by a kill) is left out. */
function readRecords(runDir: string): (MetricsRecord | SessionRecord)[] {
  const records: (MetricsRecord | SessionRecord)[] = [];
  for (const line of fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').split('\n')) {
    try {
      if (line) records.push(JSON.parse(line) as MetricsRecord | SessionRecord);
    } catch {
      // a partial line
    }
  }
  return records;
}

/** The step and epoch records of a run's metrics.jsonl. */
export function readMetrics(runDir: string): MetricsRecord[] {
  return readRecords(runDir).filter((r): r is MetricsRecord => !('session' in r));
}

/** The session records of a run's metrics.jsonl: one per training session, with what it resolved. */
export function readSessions(runDir: string): SessionRecord[] {
  return readRecords(runDir).filter((r): r is SessionRecord => 'session' in r);
}

/**
 * Writes `<runDir>/report.svg` and `<runDir>/report.html` from the run's metrics records, atomically, and returns the
 * HTML path. The page shows the charts at its full width and one table: the settings, the result and the timing.
 */
export async function writeReport(runDir: string, records: MetricsRecord[], options: ReportOptions = {}): Promise<string> {
  if (typeof runDir !== 'string' || runDir === '') throw invalid('a directory path', 'runDir', runDir);
  if (typeof options !== 'object' || options === null) throw invalid('an options object', 'options', options);
  const title = options.title ?? 'SimCLR training report';
  if (typeof title !== 'string') throw invalid('a string', 'title', title);
  checkRows(options.settings, 'settings');
  checkRows(options.results, 'results');
  checkRows(options.summary, 'summary');
  checkRows(options.timing, 'timing');
  checkRows(options.baselines, 'baselines', true);
  // report.svg stands alone and carries the title; in the page the heading gives it, once.
  const svg = await renderReportSvg(records, title, options.baselines, options.probes);
  const pageSvg = await renderReportSvg(records, '', options.baselines, options.probes);
  const sections = reportTable(records, options).map(({ section, rows }) =>
    `<tbody><tr class="section"><th colspan="2">${section}</th></tr>` +
    rows.map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`).join('') + '</tbody>');
  const html = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    '<style>body{font-family:sans-serif;margin:1.5em}.charts svg{display:block;width:100%;height:auto}',
    'table{border-collapse:collapse;margin-top:1em;min-width:50%}th,td{padding:.3em 1em;border-bottom:1px solid #ddd;text-align:left}',
    'th{font-weight:normal}td{font-variant-numeric:tabular-nums}tr.section th{font-weight:bold;padding-top:1em;border-bottom:2px solid #999}</style>',
    '</head><body>',
    `<h1>${escapeHtml(title)}</h1>`,
    `<div class="charts">${pageSvg}</div>`,
    '<h2>Run</h2>',
    `<table>${sections.join('')}</table>`,
    '</body></html>',
    '',
  ].join('\n');
  await makeFolder(runDir);
  const svgPath = path.join(runDir, 'report.svg');
  const htmlPath = path.join(runDir, 'report.html');
  await writeFileAtomic(svgPath, [svg]);
  await writeFileAtomic(htmlPath, [html]);
  return htmlPath;
}
