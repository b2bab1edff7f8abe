import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FeatureComparison, MetricsRecord, renderReportSvg, writeReport } from '../src';

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

describe('training report', () => {
  it('renders a well-formed SVG with the loss curve and the kNN accuracy series', async () => {
    const svg = await renderReportSvg(run());
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(wellFormed(svg)).toBe(true);
    for (const text of ['Training loss', 'kNN monitor accuracy', '>step<', '>loss<', '>epoch<', '>kNN accuracy<']) expect(svg).toContain(text);
    const [loss, knn] = linePaths(svg);
    // One vertex per step, left to right, falling loss drawn ever lower (SVG y grows downwards).
    expect(loss).toHaveLength(40);
    for (let i = 1; i < loss.length; i++) {
      expect(loss[i].x).toBeGreaterThan(loss[i - 1].x);
      expect(loss[i].y).toBeGreaterThan(loss[i - 1].y);
    }
    // Only the monitored epochs (2 and 4), rising accuracy drawn higher.
    expect(knn).toHaveLength(2);
    expect(knn[1].y).toBeLessThan(knn[0].y);
  });

  it('leaves the kNN chart out when the monitor never ran, and plots epoch loss when no step was logged', async () => {
    const withoutKnn = await renderReportSvg(run().map((r) => ({ ...r, knnAccuracy: undefined })));
    expect(linePaths(withoutKnn)).toHaveLength(1);
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

  it('writes report.svg and report.html with the final numbers and returns the HTML path', async () => {
    const html = await writeReport(dir, run(), { title: 'Run <A>', summary: { 'linear probe top-1': 0.8765, backbone: 'resnet18' } });
    expect(html).toBe(path.join(dir, 'report.html'));
    expect(fs.readdirSync(dir).sort()).toEqual(['report.html', 'report.svg']);
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toContain(fs.readFileSync(path.join(dir, 'report.svg'), 'utf8'));
    expect(page).toContain('<title>Run &lt;A&gt;</title>');
    expect(page).toContain('>Run &lt;A&gt;</text>');
    const rows = Object.fromEntries([...page.matchAll(/<tr><th>([^<]+)<\/th><td>([^<]+)<\/td><\/tr>/g)].map((m) => [m[1], m[2]]));
    expect(rows).toEqual({
      steps: '40',
      'final step loss': '2',
      'final learning rate': '0.000e+0',
      'mean images/s': '120.5',
      epochs: '4',
      'final epoch loss': '2',
      'final kNN accuracy': '70.00%',
      'best kNN accuracy': '70.00% (epoch 4)',
      'linear probe top-1': '0.8765',
      backbone: 'resnet18',
    });
  });

  it('creates the run folder when it does not exist yet', async () => {
    const html = await writeReport(path.join(dir, 'nested', 'run'), run());
    expect(fs.existsSync(html)).toBe(true);
  });

  it('rejects records it cannot plot', async () => {
    await expect(writeReport(dir, [])).rejects.toThrow(/at least one metrics record/);
    await expect(writeReport(dir, 'x' as never)).rejects.toThrow(TypeError);
    await expect(writeReport(dir, [{ step: 1, epoch: 1, loss: '1' } as never])).rejects.toThrow(/records\[0\]\.loss/);
    await expect(writeReport(dir, [{ epoch: 1, loss: 1, knnAccuracy: 'high' } as never])).rejects.toThrow(/knnAccuracy/);
    await expect(writeReport('', run())).rejects.toThrow(/runDir/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('training report: features compared on the same splits', () => {
  const comparison: FeatureComparison[] = [
    { name: 'SimCLR encoder (h)', linearProbe: 0.84, knn: 0.77 },
    { name: 'raw pixels', linearProbe: 0.8, knn: 0.62 },
    { name: 'random encoder', linearProbe: 0.42, knn: 0.56 },
  ];

  it("draws each baseline's kNN accuracy as a dashed horizontal line on the kNN chart, higher accuracy higher up", async () => {
    const svg = await renderReportSvg(run(), undefined, comparison);
    expect(wellFormed(svg)).toBe(true);
    const rules = [...svg.matchAll(/<line aria-label="knnAccuracy: ([\d.]+)" role="graphics-symbol" aria-roledescription="rule mark" transform="translate\(([\d.]+),([\d.-]+)\)" x2="-([\d.]+)" y2="0"[^>]*stroke-dasharray/g)]
      .map((m) => ({ accuracy: Number(m[1]), x: Number(m[2]), y: Number(m[3]), width: Number(m[4]) }));
    expect(rules.map((r) => r.accuracy)).toEqual([0.62, 0.56]);
    for (const rule of rules) expect(rule.width).toBe(rule.x);
    expect(rules[0].y).toBeLessThan(rules[1].y);
    // The curve (0.6 at epoch 2, 0.7 at epoch 4) and the lines share one axis: 0.62 lies between the curve's ends.
    const [, knn] = linePaths(svg);
    expect(rules[0].y).toBeGreaterThan(knn[1].y);
    expect(rules[0].y).toBeLessThan(knn[0].y);
    expect(svg).toContain('raw pixels 62.00%');
    expect(svg).toContain('random encoder 56.00%');
  });

  it('draws the linear probes as bars from zero, in the given order, each as long as its accuracy', async () => {
    const svg = await renderReportSvg(run(), undefined, comparison);
    const bars = [...svg.matchAll(/aria-label="test accuracy: [^;]+; features: ([^"]+)" role="graphics-symbol" aria-roledescription="bar" d="M0,([\d.]+)h([\d.]+)v/g)]
      .map((m) => ({ name: m[1], y: Number(m[2]), width: Number(m[3]) }));
    expect(bars.map((b) => b.name)).toEqual(comparison.map((c) => c.name));
    for (const [i, bar] of bars.entries()) expect(bar.width / bars[0].width).toBeCloseTo(comparison[i].linearProbe / comparison[0].linearProbe, 6);
    expect(bars[1].y).toBeGreaterThan(bars[0].y);
    for (const label of ['84.00%', '80.00%', '42.00%']) expect(svg).toContain(`>${label}</text>`);
  });

  it('keeps the report without a comparison as it was', async () => {
    const svg = await renderReportSvg(run());
    expect(svg).not.toContain('rule mark');
    expect(svg).not.toContain('Linear probe accuracy');
  });

  it('rejects a comparison it cannot plot', async () => {
    await expect(writeReport(dir, run(), { comparison: [] })).rejects.toThrow(/comparison/);
    await expect(writeReport(dir, run(), { comparison: [{ name: '', linearProbe: 0.5, knn: 0.5 }] })).rejects.toThrow(/comparison\[0\]\.name/);
    await expect(writeReport(dir, run(), { comparison: [{ name: 'a', linearProbe: 1.5, knn: 0.5 }] })).rejects.toThrow(/comparison\[0\]\.linearProbe/);
    await expect(writeReport(dir, run(), { comparison: [{ name: 'a', linearProbe: 0.5, knn: NaN }] })).rejects.toThrow(/comparison\[0\]\.knn/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
