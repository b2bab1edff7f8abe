/**
 * The browser example (examples/browser): served from 127.0.0.1 to headless Chromium, its page loads an exported model
 * with ONNX Runtime Web (wasm), reads the input it expects from the model's metadata, and embeds an image as Node does.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { SimCLRModel, Tensor, exportOnnx, toModelInput } from '../src';
import { imageToOnnxInput, readOnnxInputSpec } from '../src/preprocess';
import { Chromium } from './helpers/chromium';
import { describeWithTool, findTool } from './helpers/tools';
import { scratchFolders } from './helpers/scratch';
import { cosineSimilarity, errorOfScale } from './helpers/numerics';

const chromium = findTool(['chromium', 'chromium-browser', 'google-chrome'], ['--version']);
const tmp = scratchFolders('browser-onnx');
const SIZE = 32;

/** Seeded pixels: noise (every pixel its own value) or a smooth pattern. */
function pixels(width: number, height: number, seed: number, noise: boolean): Buffer {
  let s = seed;
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const x = (i / 3) % width;
    const y = Math.floor(i / 3 / width);
    data[i] = noise ? s % 256 : Math.round(127.5 + 120 * Math.sin((x + 2 * y + 40 * (i % 3)) / 9));
  }
  return data;
}

describeWithTool('the browser example', 'chromium (Debian package)', chromium, (binary) => {
  const folder = tmp();
  let model: SimCLRModel;
  let server: ChildProcess;
  let url: string;
  let browser: Chromium;

  /** LibTorch's features of an RGB image, made into the model's input as the package makes it (toModelInput). */
  const nodeFeatures = async (rgb: Buffer, width: number, height: number) => {
    const images = Tensor.fromTypedArray(new Uint8Array(rgb), [1, height, width, 3]);
    return (await model.embed(await toModelInput(images, { size: SIZE }))).toTypedArray() as Float32Array;
  };

  beforeAll(async () => {
    model = await SimCLRModel.create({ backbone: 'resnet18', stem: 'cifar' });
    // Two train-mode passes give the BatchNorms running statistics of their own, which the export folds in.
    model.train();
    for (let i = 0; i < 2; i++) await model.forward(Tensor.randn([8, 3, SIZE, SIZE]));
    model.eval();
    await exportOnnx(model, path.join(folder, 'model.onnx'), { imageSize: SIZE });
    await sharp(pixels(SIZE, SIZE, 1, true), { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toFile(path.join(folder, 'noise.png'));
    await sharp(pixels(SIZE, SIZE, 2, false), { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toFile(path.join(folder, 'pattern.png'));
    await sharp(pixels(4 * SIZE, 4 * SIZE, 3, false), { raw: { width: 4 * SIZE, height: 4 * SIZE, channels: 3 } }).png().toFile(path.join(folder, 'large.png'));
    ({ server, url } = await serve(path.join(folder, 'model.onnx')));
    browser = await Chromium.launch(binary);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    server?.kill();
  });

  /** The example's server for `model`, with the test's images under /images/. */
  async function serve(modelFile: string): Promise<{ server: ChildProcess; url: string }> {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'browser', 'serve.js'), '--model', modelFile,
      '--port', '0', '--images', folder], { stdio: ['ignore', 'pipe', 'inherit'] });
    const address = await new Promise<string>((resolve, reject) => {
      child.stdout!.once('data', (d) => resolve(String(d).trim()));
      child.once('exit', (code) => reject(new Error(`serve.js exited with ${code}`)));
    });
    return { server: child, url: address };
  }

  it('embeds an image of the model\'s size as LibTorch does in Node, within 1e-4, and logs no error', async () => {
    const page = await browser.open(url, 800, 600);
    for (let i = 0; i < 600 && !(await page.evaluate<boolean>('window.modelReady === true')); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await page.evaluate<string>('document.getElementById("status").textContent')).toMatch(
      /^resnet18 \(cifar stem\): 32 x 32 RGB input, mean 0.485, 0.456, 0.406, std 0.229, 0.224, 0.225\./);
    const errors: Record<string, number> = {};
    for (const [name, seed, noise] of [['noise.png', 1, true], ['pattern.png', 2, false]] as const) {
      const browserFeatures = await page.evaluate<number[]>(`window.embedUrl('/images/${name}')`);
      const expected = await nodeFeatures(pixels(SIZE, SIZE, seed, noise), SIZE, SIZE);
      expect(browserFeatures).toHaveLength(512);
      errors[name] = errorOfScale(browserFeatures, expected);
    }
    console.log(`browser (ONNX Runtime Web) vs Node (LibTorch), max |diff| / max |Node|: ${JSON.stringify(errors)}`);
    for (const error of Object.values(errors)) expect(error).toBeLessThan(1e-4);
    expect(page.problems).toEqual({ console: [], exceptions: [], log: [] });
  }, 120_000);

  it('embeds a larger image close to Node\'s (the browser scales it with its own filter)', async () => {
    const page = await browser.open(url, 800, 600);
    for (let i = 0; i < 600 && !(await page.evaluate<boolean>('window.modelReady === true')); i++) await new Promise((r) => setTimeout(r, 100));
    const browserFeatures = await page.evaluate<number[]>(`window.embedUrl('/images/large.png')`);
    const expected = await nodeFeatures(pixels(4 * SIZE, 4 * SIZE, 3, false), 4 * SIZE, 4 * SIZE);
    const cosine = cosineSimilarity(browserFeatures, expected);
    console.log(`a 128 px image scaled to 32 px: browser vs Node cosine similarity ${cosine.toFixed(5)}, max |diff| / max |Node| ${errorOfScale(browserFeatures, expected).toExponential(2)}`);
    expect(cosine).toBeGreaterThan(0.99);
  }, 120_000);

  it('decodes to the model\'s baseSize first, then resizes to its size, as the package does', async () => {
    // Base size 8 for 32 px inputs: the package scales a 32 px image down to 8 px, then up to 32 again.
    const modelFile = path.join(folder, 'base8.onnx');
    await exportOnnx(model, modelFile, { imageSize: SIZE, baseSize: 8 });
    // Node makes the input as the model's metadata says, as a service would.
    const spec = readOnnxInputSpec(fs.readFileSync(modelFile));
    expect([spec.size, spec.baseSize]).toEqual([SIZE, 8]);
    const other = await serve(modelFile);
    try {
      const page = await browser.open(other.url, 800, 600);
      for (let i = 0; i < 600 && !(await page.evaluate<boolean>('window.modelReady === true')); i++) await new Promise((r) => setTimeout(r, 100));
      for (const name of ['noise.png', 'pattern.png']) {
        const browserFeatures = await page.evaluate<number[]>(`window.embedUrl('/images/${name}')`);
        const { data, dims } = await imageToOnnxInput(fs.readFileSync(path.join(folder, name)), spec);
        const expected = (await model.embed(Tensor.fromTypedArray(data, dims))).toTypedArray() as Float32Array;
        const cosine = cosineSimilarity(browserFeatures, expected);
        const straight = cosineSimilarity(browserFeatures, await nodeFeatures(await sharp(path.join(folder, name)).raw().toBuffer(), SIZE, SIZE));
        console.log(`${name}, baseSize 8, size 32: browser vs Node cosine similarity ${cosine.toFixed(5)} (vs Node's input without the baseSize step: ${straight.toFixed(5)})`);
        expect(cosine).toBeGreaterThan(0.99);
      }
      expect(page.problems).toEqual({ console: [], exceptions: [], log: [] });
    } finally {
      other.server.kill();
    }
  }, 120_000);
});
