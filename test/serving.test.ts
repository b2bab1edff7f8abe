/**
 * The example embedding service (examples/serve/server.js) as a user runs it, with each backend: a tiny checkpoint
 * trained by the CLI, its ONNX export, a folder of Fashion-MNIST test images as PNG, JPEG and WebP. Both backends
 * must find each image of the folder as its own nearest neighbour, answer the same neighbours and embeddings, turn
 * bad bytes into HTTP 400, and the ONNX one must do without LibTorch.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import sharp from 'sharp';
import { fashionMnist } from '../src';
import { hasJpegDecoder } from '../src/augment/image-batch';
import { describeWithFashionMnist } from './helpers/tools';
import { scratchFolders } from './helpers/scratch';
import { cosineSimilarity, errorOfScale } from './helpers/numerics';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const SERVER = path.join(ROOT, 'examples', 'serve', 'server.js');
const tmp = scratchFolders('serving');

function simclr(...args: string[]): string {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  if (run.status !== 0) throw new Error(`simclr ${args[0]} failed (${run.status ?? run.signal}):\n${run.stderr}`);
  return run.stdout;
}

interface Service {
  url: string;
  child: ChildProcess;
  stderr: () => string;
}

/** Starts server.js with `args` on a free port; resolves when it prints the line that says where it listens. */
function startService(args: string[]): Promise<Service> {
  const child = spawn(process.execPath, [SERVER, '--port', '0', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      stdout += chunk;
      if (stdout.includes('\n')) resolve({ url: JSON.parse(stdout.split('\n')[0]).url, child, stderr: () => stderr });
    });
    child.on('exit', (code) => reject(new Error(`server.js ${args.join(' ')} exited (${code}):\n${stderr}`)));
  });
}

function post(url: string, body: Buffer): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-length': body.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

type Neighbour = { file: string; similarity: number };

/** The shared objects a process has mapped, of LibTorch and of our addon. */
function nativeLibraries(pid: number): string[] {
  const files = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').map((line) => line.split(/\s+/)[5]).filter(Boolean);
  return [...new Set(files.filter((f) => /libtorch|libc10|[\\/]prebuilds[\\/].*\.node$|simclr\.node$/.test(f)))];
}

describeWithFashionMnist('the example embedding service (examples/serve), with LibTorch and with ONNX Runtime', () => {
  const folder = tmp();
  const images = path.join(folder, 'images');
  let names: string[] = [];
  const services: Record<'libtorch' | 'onnx' | 'onnxFromEmbeddings', Service> = {} as never;

  beforeAll(async () => {
    // Base size 20, image size 16: the served input takes both resizes of the evaluation path.
    const run = path.join(folder, 'run');
    simclr('train', '--data', 'fashion-mnist', '--subset', '32', '--batch-size', '16', '--epochs', '1', '--base-size', '20', '--image-size', '16',
      '--stem', 'cifar', '--workers', '1', '--knn-every', '0', '--progress', 'none', '--out', run);
    const checkpoint = path.join(run, 'last.ckpt');
    const model = path.join(folder, 'encoder.onnx');
    simclr('export', '--checkpoint', checkpoint, '--format', 'onnx', '--out', model);

    // 12 test images in two class folders, as PNG, JPEG and WebP at their 28 px; with the addon's libjpeg, also three
    // JPEGs at 84 px, which it scales on load (PIL's draft) and simclr/preprocess approximates (preprocess.test.ts);
    // where simclr decodes JPEGs with sharp instead (pip prebuilds) the two paths differ more there (same test).
    const dataset = fashionMnist('test', { size: null });
    for (let i = 0; i < 12; i++) {
      const { image } = await dataset.get(i);
      const pixels = sharp(Buffer.from(image), { raw: { width: 28, height: 28, channels: 3 } });
      const sub = path.join(images, i % 2 === 0 ? 'even' : 'odd');
      fs.mkdirSync(sub, { recursive: true });
      const format = (['png', 'jpeg', 'webp'] as const)[i % 3];
      await pixels.clone().toFormat(format).toFile(path.join(sub, `${i}.${format === 'jpeg' ? 'jpg' : format}`));
      if (i % 4 === 1 && hasJpegDecoder()) await pixels.clone().resize(84, 84).jpeg({ quality: 90 }).toFile(path.join(sub, `${i}-large.jpg`));
    }
    names = fs.readdirSync(images, { recursive: true }).map(String).filter((f) => /\.(png|jpg|webp)$/.test(f)).sort();
    const embeddings = path.join(folder, 'emb.npy');
    simclr('embed', '--checkpoint', checkpoint, '--data', images, '--out', embeddings);

    [services.libtorch, services.onnx, services.onnxFromEmbeddings] = await Promise.all([
      startService(['--backend', 'libtorch', '--checkpoint', checkpoint, '--images', images]),
      startService(['--backend', 'onnx', '--model', model, '--images', images]),
      startService(['--backend', 'onnx', '--model', model, '--embeddings', embeddings]),
    ]);
  }, 300_000);

  afterAll(() => {
    for (const service of Object.values(services)) service.child.kill();
  });

  const bytesOf = (name: string) => fs.readFileSync(path.join(images, name));

  it('each backend finds every image of the folder as its own nearest neighbour (requests in parallel)', async () => {
    expect(names.length).toBeGreaterThanOrEqual(12);
    for (const service of [services.libtorch, services.onnx]) {
      const answers = await Promise.all(names.map((name) => post(`${service.url}/nearest?k=3`, bytesOf(name))));
      for (const [i, { status, json }] of answers.entries()) {
        expect(status).toBe(200);
        const neighbours = json.neighbours as Neighbour[];
        expect(neighbours).toHaveLength(3);
        expect(neighbours[0].file).toBe(names[i]);
        expect(neighbours[0].similarity).toBeGreaterThan(0.9999);
      }
    }
  });

  // Tolerance: the two backends run the same model on inputs that are equal (PNG, WebP, JPEGs under twice the base
  // size: preprocess.test.ts) or close (the 84 px JPEGs); ONNX Runtime against LibTorch is within 1e-4 of the output's
  // scale (onnx-export.test.ts asserts that, measured about 1e-6). So: 1e-4 of the scale where the inputs are equal,
  // cosine 0.9999 for the large JPEGs (preprocess.test.ts's bound for grey images).
  it('both backends answer the same top-5 and embeddings within tolerance', async () => {
    const found: string[] = [];
    for (const name of names) {
      const [lt, ox] = await Promise.all([services.libtorch, services.onnx].map((s) => post(`${s.url}/embed`, bytesOf(name))));
      expect([lt.status, ox.status]).toEqual([200, 200]);
      const a = lt.json.embedding as number[];
      const b = ox.json.embedding as number[];
      expect(a).toHaveLength(512);
      const error = errorOfScale(b, a);
      const cosine = cosineSimilarity(a, b);
      found.push(`${name}: ${error.toExponential(1)} of the scale, cosine ${cosine.toFixed(7)}`);
      if (name.endsWith('-large.jpg')) expect(cosine).toBeGreaterThanOrEqual(0.9999);
      else expect(error).toBeLessThan(1e-4);

      const [ltNearest, oxNearest] = await Promise.all([services.libtorch, services.onnx].map((s) => post(`${s.url}/nearest?k=5`, bytesOf(name))));
      expect((oxNearest.json.neighbours as Neighbour[]).map((n) => n.file)).toEqual((ltNearest.json.neighbours as Neighbour[]).map((n) => n.file));
    }
    console.log(`embeddings, ONNX Runtime service vs LibTorch service:\n  ${found.join('\n  ')}`);
  });

  it('loads simclr embed\'s outputs (--embeddings) and answers the neighbours it found from the images', async () => {
    for (const name of names) {
      const [fromImages, fromFiles] = await Promise.all([services.onnx, services.onnxFromEmbeddings].map((s) => post(`${s.url}/nearest?k=5`, bytesOf(name))));
      const relative = (fromFiles.json.neighbours as Neighbour[]).map((n) => path.relative(images, n.file));
      expect(relative[0]).toBe(name);
      expect(relative).toEqual((fromImages.json.neighbours as Neighbour[]).map((n) => n.file));
    }
  });

  it('answers bad bytes with HTTP 400 and the reason, and keeps serving', async () => {
    const png = bytesOf(names.find((n) => n.endsWith('.png'))!);
    const jpeg = bytesOf(names.find((n) => n.endsWith('.jpg'))!);
    for (const service of [services.libtorch, services.onnx]) {
      for (const [body, reason] of [
        [Buffer.from('these are not the bytes of an image'), /^Cannot read image 'image 0': .*unsupported image format/],
        [png.subarray(0, png.length - 20), /^Cannot read image 'image 0': /],
        [jpeg.subarray(0, 200), /^Cannot read image 'image 0': .*(premature end|corrupt)/i],
        [Buffer.alloc(0), /^empty body: POST the bytes of an image file/],
      ] as const) {
        for (const route of ['/embed', '/nearest?k=2']) {
          const { status, json } = await post(`${service.url}${route}`, body);
          expect([status, json.error]).toEqual([400, expect.stringMatching(reason)]);
        }
      }
      expect((await post(`${service.url}/nearest?k=0`, png)).status).toBe(400);
      expect((await post(`${service.url}/nearest?k=1`, png)).json.neighbours).toHaveLength(1);
      expect(service.child.exitCode).toBeNull();
      expect(service.stderr()).toBe('');
    }
  });

  it('the ONNX backend\'s process never loads LibTorch or our addon (the LibTorch one does)', () => {
    expect(nativeLibraries(services.onnx.child.pid!)).toEqual([]);
    expect(nativeLibraries(services.onnxFromEmbeddings.child.pid!)).toEqual([]);
    expect(nativeLibraries(services.libtorch.child.pid!).some((f) => /libtorch/.test(f))).toBe(true);
  });
});
