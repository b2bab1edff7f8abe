import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MetricsRecord, renderReportSvg, writeReport } from '../src';
import { percentDecimals } from '../src/train/report';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-report-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** 40 steps of falling loss over 4 epochs, with the kNN monitor run on epochs 2 and 4. */
function run(): MetricsRecord[] {
  const records: MetricsRecord[] = [];
  for (let step = 1; step <= 40; step++) {
    records.push({ step, epoch: Math.ceil(step / 10), loss: 6 - step * 0.1, lr: 0.3 * (1 - step / 40), imagesPerSecond: 100 + step });
    if (step % 10 === 0) {
      const epoch = step / 10;
      records.push(epoch % 2 === 0 ? { epoch, loss: 6 - step * 0.1, knnAccuracy: 0.5 + epoch * 0.05 } : { epoch, loss: 6 - step * 0.1 });
    }
  }
  return records;
}

/** Vertices of the SVG paths drawn for vega line marks, in drawing order. */
function linePaths(svg: string): { x: number; y: number }[][] {
  return [...svg.matchAll(/aria-roledescription="line mark" d="([^"]+)"/g)].map((m) =>
    m[1].replace(/^M/, '').split('L').map((pair) => {
      const [x, y] = pair.split(',').map(Number);
      return { x, y };
    }));
}

/** Checks that every opened element is closed in order: a small well-formedness test without an XML parser. */
function wellFormed(svg: string): boolean {
  const stack: string[] = [];
  for (const tag of svg.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    if (tag[3] === '/') continue;
    if (tag[1] === '') stack.push(tag[2]);
    else if (stack.pop() !== tag[2]) return false;
  }
  return stack.length === 0;
}

/** The tick labels of the axis whose aria-label starts with `label` (e.g. "Y-axis titled 'kNN accuracy'"). */
function tickLabels(svg: string, label: string): string[] {
  const axis = svg.indexOf(`aria-label="${label}`);
  if (axis < 0) return [];
  const start = svg.indexOf('role-axis-label', axis);
  const group = svg.slice(start, svg.indexOf('</g>', start));
  return [...group.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
}

describe('training report', () => {
  it('renders a well-formed SVG: loss per step with a smoothed line, the learning rate, and the kNN accuracy', async () => {
    const svg = await renderReportSvg(run());
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(wellFormed(svg)).toBe(true);
    for (const text of ['Training loss', 'Learning rate', 'kNN monitor accuracy', '>step<', '>loss<', '>learning rate<', '>epoch<', '>kNN accuracy<']) {
      expect(svg).toContain(text);
    }
    const [loss, smooth, lr, knn] = linePaths(svg);
    // One vertex per step, left to right, falling loss drawn ever lower (SVG y grows downwards); the smoothed line too.
    for (const line of [loss, smooth]) {
      expect(line).toHaveLength(40);
      for (let i = 1; i < line.length; i++) {
        expect(line[i].x).toBeGreaterThan(line[i - 1].x);
        expect(line[i].y).toBeGreaterThan(line[i - 1].y);
      }
    }
    // The learning rate falls to 0: drawn lower and lower.
    expect(lr).toHaveLength(40);
    expect(lr[39].y).toBeGreaterThan(lr[0].y);
    // Only the monitored epochs (2 and 4), rising accuracy drawn higher.
    expect(knn).toHaveLength(2);
    expect(knn[1].y).toBeLessThan(knn[0].y);
  });

  it('leaves the kNN chart out when the monitor never ran, and plots epoch loss when no step was logged', async () => {
    const withoutKnn = await renderReportSvg(run().map((r) => ({ ...r, knnAccuracy: undefined })));
    expect(linePaths(withoutKnn)).toHaveLength(3);
    expect(withoutKnn).not.toContain('kNN monitor accuracy');
    const epochsOnly = await renderReportSvg([{ epoch: 1, loss: 5 }, { epoch: 2, loss: 4 }, { epoch: 3, loss: 4.5 }]);
    expect(linePaths(epochsOnly)[0]).toHaveLength(3);
    expect(epochsOnly).toContain('>epoch<');
  });

  it('averages long loss curves down to at most 2000 points', async () => {
    const records = Array.from({ length: 5001 }, (_, i) => ({ step: i + 1, epoch: 1, loss: 1 / (i + 1), lr: 0.1, imagesPerSecond: 10 }));
    const [loss] = linePaths(await renderReportSvg(records));
    expect(loss.length).toBeLessThanOrEqual(2000);
    expect(loss.length).toBeGreaterThan(1000);
  });

  it('marks short batches and leaves them out of the smoothed line', async () => {
    // 3 epochs of 4 full batches of 16 and one short batch of 3 (whose loss is lower: fewer negatives).
    const records: MetricsRecord[] = [];
    for (let step = 1; step <= 15; step++) {
      const short = step % 5 === 0;
      records.push({ step, epoch: Math.ceil(step / 5), loss: short ? 1 : 4, lr: 0.1, imagesPerSecond: 50, images: short ? 3 : 16 });
    }
    const svg = await renderReportSvg(records);
    const [loss, smooth] = linePaths(svg);
    expect(loss).toHaveLength(15);
    expect(smooth).toHaveLength(12);
    expect(new Set(smooth.map((p) => p.y)).size).toBe(1); // every full batch has loss 4: a flat smoothed line
    expect(svg).toContain('>short batch<');
    expect(svg.match(/aria-roledescription="point"/g)).toHaveLength(3);
  });

  it('labels short runs with whole steps and close kNN accuracies with enough decimals to tell them apart', async () => {
    const records: MetricsRecord[] = [
      { step: 1, epoch: 1, loss: 5, lr: 0.1, imagesPerSecond: 9 }, { epoch: 1, loss: 5, knnAccuracy: 0.7212 },
      { step: 2, epoch: 2, loss: 4.9, lr: 0.05, imagesPerSecond: 9 }, { epoch: 2, loss: 4.9, knnAccuracy: 0.7238 },
      { step: 3, epoch: 3, loss: 4.8, lr: 0.01, imagesPerSecond: 9 }, { epoch: 3, loss: 4.8, knnAccuracy: 0.7291 },
    ];
    const svg = await renderReportSvg(records);
    const steps = tickLabels(svg, "X-axis titled 'step'");
    expect(steps.length).toBeGreaterThan(1);
    for (const tick of steps) expect(tick).toMatch(/^\d+$/);
    const knn = tickLabels(svg, "Y-axis titled 'kNN accuracy'");
    expect(knn.length).toBeGreaterThan(2);
    expect(new Set(knn).size).toBe(knn.length);
    for (const tick of knn) expect(tick).toMatch(/^\d+\.\d%$/);
    expect([percentDecimals([0.72, 0.73]), percentDecimals([0.721, 0.723]), percentDecimals([0.2, 0.9]), percentDecimals([0.5])]).toEqual([1, 2, 0, 1]);
  });

  it('draws baselines as labelled lines on the kNN chart', async () => {
    const svg = await renderReportSvg(run(), undefined, { 'raw pixels': 0.743, 'random encoder': 0.718 });
    expect(svg.match(/aria-roledescription="rule mark"/g)).toHaveLength(2);
    // kNN accuracies from 60% to 74.3%: whole percents tell the ticks apart.
    expect(svg).toContain('>raw pixels 74%<');
    expect(svg).toContain('>random encoder 72%<');
  });

  it('draws linear probes as bars from zero, in the given order, each as long as its accuracy and labelled with it', async () => {
    const probes = { 'SimCLR encoder (h)': 0.84, 'raw pixels': 0.8, 'random encoder': 0.42 };
    const svg = await renderReportSvg(run(), undefined, undefined, probes);
    expect(wellFormed(svg)).toBe(true);
    const bars = [...svg.matchAll(/aria-label="linear probe test accuracy: [^;]+; features: ([^"]+)" role="graphics-symbol" aria-roledescription="bar" d="M0,([\d.]+)h([\d.]+)v/g)]
      .map((m) => ({ name: m[1], y: Number(m[2]), width: Number(m[3]) }));
    expect(bars.map((b) => b.name)).toEqual(Object.keys(probes));
    const accuracies = Object.values(probes);
    for (const [i, bar] of bars.entries()) expect(bar.width / bars[0].width).toBeCloseTo(accuracies[i] / accuracies[0], 6);
    expect(bars[1].y).toBeGreaterThan(bars[0].y);
    for (const label of ['84.00%', '80.00%', '42.00%']) expect(svg).toContain(`>${label}</text>`);
  });

  it('draws no probe chart without probes', async () => {
    expect(await renderReportSvg(run())).not.toContain('Linear probe accuracy');
  });

  it('writes report.svg and report.html with one table of result, timing and settings, and returns the HTML path', async () => {
    const html = await writeReport(dir, run(), {
      title: 'Run <A>', results: { 'linear probe top-1': 0.8765 }, baselines: { 'raw pixels': 0.743 },
      settings: { backbone: 'resnet18', epochs: 4, nesterov: false, subset: undefined }, timing: { 'wall time': '1m05s' },
    });
    expect(html).toBe(path.join(dir, 'report.html'));
    expect(fs.readdirSync(dir).sort()).toEqual(['report.html', 'report.svg']);
    const page = fs.readFileSync(html, 'utf8');
    const svg = fs.readFileSync(path.join(dir, 'report.svg'), 'utf8');
    // The page names the run once, in its heading; the charts it shows are report.svg's without the title it carries alone.
    expect(page).toContain('<title>Run &lt;A&gt;</title>');
    expect([...page.matchAll(/<h1>Run &lt;A&gt;<\/h1>/g)]).toHaveLength(1);
    expect(page).not.toContain('>Run &lt;A&gt;</text>');
    expect(svg).toContain('>Run &lt;A&gt;</text>');
    for (const chart of ['Training loss', 'Learning rate', 'kNN monitor accuracy']) expect(page).toContain(chart);
    const sections = [...page.matchAll(/<tr class="section"><th colspan="2">(\w+)<\/th><\/tr>/g)].map((m) => m[1]);
    expect(sections).toEqual(['Result', 'Timing', 'Settings']);
    const rows = [...page.matchAll(/<tr><th>([^<]+)<\/th><td>([^<]+)<\/td><\/tr>/g)].map((m) => [m[1], m[2]]);
    expect(rows).toEqual([
      ['steps', '40'], ['epochs completed', '4'], ['final epoch loss', '2'], ['last full-batch step loss', '2'],
      ['final learning rate', '0.000e+0'], ['final kNN accuracy', '70.00%'], ['best kNN accuracy', '70.00% (epoch 4)'],
      ['kNN accuracy of raw pixels', '74.30%'], ['linear probe top-1', '0.8765'],
      ['mean images/s (full batches)', '120.5'], ['wall time', '1m05s'],
      ['backbone', 'resnet18'], ['epochs', '4'], ['nesterov', 'false'],
    ]);
  });

  it('lists each name once: a row the caller gives replaces the computed one', async () => {
    const page = fs.readFileSync(await writeReport(dir, run(), { results: { steps: 'forty' }, timing: { 'mean images/s (full batches)': 99 } }), 'utf8');
    const names = [...page.matchAll(/<tr><th>([^<]+)<\/th>/g)].map((m) => m[1]);
    expect(new Set(names).size).toBe(names.length);
    expect(page).toContain('<tr><th>steps</th><td>forty</td></tr>');
    expect(page).toContain('<tr><th>mean images/s (full batches)</th><td>99</td></tr>');
  });

  it('creates the run folder when it does not exist yet', async () => {
    const html = await writeReport(path.join(dir, 'nested', 'run'), run());
    expect(fs.existsSync(html)).toBe(true);
  });

  it('a folder that cannot be made is an error at once (Node\'s recursive mkdir spins forever under /proc)', async () => {
    const started = Date.now();
    await expect(writeReport('/proc/simclr-report/run', run())).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('rejects records and options it cannot show', async () => {
    await expect(writeReport(dir, [])).rejects.toThrow(/at least one metrics record/);
    await expect(writeReport(dir, 'x' as never)).rejects.toThrow(TypeError);
    await expect(writeReport(dir, [{ step: 1, epoch: 1, loss: '1' } as never])).rejects.toThrow(/records\[0\]\.loss/);
    await expect(writeReport(dir, [{ epoch: 1, loss: 1, knnAccuracy: 'high' } as never])).rejects.toThrow(/knnAccuracy/);
    await expect(writeReport(dir, run(), { baselines: { pixels: '74%' } as never })).rejects.toThrow(/baselines\['pixels'\]/);
    await expect(writeReport(dir, run(), { settings: { lr: [0.1] } as never })).rejects.toThrow(/settings\['lr'\]/);
    await expect(writeReport(dir, run(), { probes: { pixels: 1.5 } })).rejects.toThrow(/probes\['pixels'\]/);
    await expect(writeReport(dir, run(), { probes: { pixels: '83%' } as never })).rejects.toThrow(/probes\['pixels'\]/);
    await expect(writeReport('', run())).rejects.toThrow(/runDir/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
