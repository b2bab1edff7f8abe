/**
 * report.html as a person sees it: opened in headless Chromium at 1280 px, it logs no console error or exception,
 * its charts span the page, every chart has its data drawn (pixels of the series colour inside the plot area), the
 * kNN axis labels differ from each other, and the table lists each name once.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import sharp from 'sharp';
import { DEFAULT_RUN_CONFIG, MetricsRecord, runTraining, writeReport } from '../src';
import { Chromium } from './helpers/chromium';
import { describeWithTool, findTool } from './helpers/tools';

const chromium = findTool(['chromium', 'chromium-browser', 'google-chrome'], ['--version']);
const WIDTH = 1280;

/** What the page says about itself. */
interface Layout {
  bodyWidth: number;
  svgWidth: number;
  charts: { title: string; x: number; y: number; width: number; height: number }[];
  knnTicks: string[];
  names: string[];
}

const LAYOUT = String.raw`(() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return { x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height }; };
  const groups = [...document.querySelectorAll('.charts g.role-scope')].filter((g) => /concat_\d+_group/.test(g.getAttribute('class')));
  const axis = document.querySelector('[aria-label^="Y-axis titled \'kNN accuracy\'"]');
  return {
    bodyWidth: document.body.clientWidth,
    svgWidth: document.querySelector('.charts svg').getBoundingClientRect().width,
    charts: groups.map((g) => ({ title: g.querySelector('.role-title-text text')?.textContent ?? '', ...box(g.querySelector(':scope > g > path.background')) })),
    knnTicks: axis ? [...axis.querySelectorAll('.role-axis-label text')].map((t) => t.textContent) : [],
    names: [...document.querySelectorAll('table tr:not(.section) th')].map((th) => th.textContent),
  };
})()`;

/** Series colours of the charts, as the report draws them. */
const SERIES: Record<string, [number, number, number]> = {
  'Training loss': [0x1f, 0x77, 0xb4],
  'Learning rate': [0x2c, 0xa0, 0x2c],
  'kNN monitor accuracy': [0xd6, 0x27, 0x28],
};

/** Pixels of `colour` (within a small tolerance) inside `box` of an RGB screenshot. */
function countColour(image: { data: Buffer; width: number }, box: { x: number; y: number; width: number; height: number }, colour: [number, number, number]): number {
  let count = 0;
  for (let y = Math.ceil(box.y); y < Math.floor(box.y + box.height); y++) {
    for (let x = Math.ceil(box.x); x < Math.floor(box.x + box.width); x++) {
      const i = 3 * (y * image.width + x);
      if (colour.every((c, k) => Math.abs(image.data[i + k] - c) <= 24)) count++;
    }
  }
  return count;
}

/** A synthetic quickstart-like run: 3 epochs of 12 full batches and a short one, monitored, with baselines. */
function syntheticRun(): MetricsRecord[] {
  const records: MetricsRecord[] = [];
  let step = 0;
  for (let epoch = 1; epoch <= 3; epoch++) {
    for (let b = 0; b < 13; b++) {
      step++;
      const images = b === 12 ? 32 : 256;
      records.push({ step, epoch, loss: 5.5 - 0.3 * Math.log(step) - (images < 256 ? 1.6 : 0), lr: 0.06 * (1 - step / 39), imagesPerSecond: 110, images });
    }
    records.push({ epoch, loss: 5 - 0.2 * epoch, knnAccuracy: 0.721 + 0.003 * epoch });
  }
  return records;
}

describeWithTool('report.html in headless Chromium', 'chromium', chromium, (binary) => {
  let dir: string;
  let browser: Chromium;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-report-browser-'));
    browser = await Chromium.launch(binary);
  });
  afterAll(async () => {
    await browser?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function check(html: string, expectedCharts: string[]): Promise<Layout> {
    const page = await browser.open(pathToFileURL(html).href, WIDTH, 900);
    const layout = await page.evaluate<Layout>(LAYOUT);
    const png = await page.screenshot();
    const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect(page.problems).toEqual({ console: [], exceptions: [], log: [] });
    expect(layout.charts.map((c) => c.title)).toEqual(expectedCharts);
    // The charts use the page's width (not a fixed half of it).
    expect(layout.svgWidth).toBeGreaterThan(0.95 * layout.bodyWidth);
    for (const chart of layout.charts) {
      expect(chart.width).toBeGreaterThan(0.8 * layout.bodyWidth);
      expect(countColour({ data, width: info.width }, chart, SERIES[chart.title])).toBeGreaterThan(100);
    }
    expect(new Set(layout.names).size).toBe(layout.names.length);
    return layout;
  }

  it('draws a monitored run with short batches and baselines: loss, learning rate and kNN, with distinct kNN ticks', async () => {
    const html = await writeReport(path.join(dir, 'synthetic'), syntheticRun(), {
      settings: { ...DEFAULT_RUN_CONFIG }, baselines: { 'raw pixels': 0.743, 'random encoder': 0.718 },
      results: { 'linear probe: SimCLR encoder (h)': '81.30%' }, timing: { 'wall time': '6m12s' },
    });
    const layout = await check(html, ['Training loss', 'Learning rate', 'kNN monitor accuracy']);
    expect(layout.knnTicks.length).toBeGreaterThan(2);
    expect(new Set(layout.knnTicks).size).toBe(layout.knnTicks.length);
    expect(layout.names).toEqual(expect.arrayContaining(['steps', 'epochs completed', 'kNN accuracy of raw pixels', 'wall time', 'batchSize']));
  });

  it('draws the report of a real (tiny) training run', async () => {
    const run = await runTraining({
      data: 'fashion-mnist', subset: 48, evalSubset: 64, batchSize: 16, epochs: 2, baseSize: 16, imageSize: 16, workers: 1, out: path.join(dir, 'real'),
    }, { progress: 'none' });
    const layout = await check(run.reportPath, ['Training loss', 'Learning rate', 'kNN monitor accuracy']);
    expect(layout.names).toEqual(expect.arrayContaining(['steps', 'final kNN accuracy', 'wall time', 'data', 'out']));
  });
});
