/**
 * Decoding to the base size: the native JPEG decoder and resize give the seed's PIL bytes (Image.open → draft →
 * convert('RGB') → resize BILINEAR, which is torchvision's Resize on PIL images), and bad input is an error, not a crash.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { IdxDataset, resizeImage } from '../src';
import { decodeJpeg, hasJpegDecoder } from '../src/augment/image-batch';
import { decodeFile } from '../src/data/decode';
import { SampleError } from '../src/data/dataset';
import { nativeBinary } from '../src/native';
import { describeWithOracle, runPython } from './helpers/oracle';

let root: string;

// Photo-like content (smooth colour fields, edges and noise), so that resampling and JPEG rounding both matter.
function texture(width: number, height: number, seed: number): Buffer {
  const pixels = Buffer.alloc(width * height * 3);
  let state = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const i = 3 * (y * width + x);
      pixels[i] = 128 + 90 * Math.sin((x + seed) / 7) + (state & 31) - 16;
      pixels[i + 1] = (x * 3 + y * 5) % 256;
      pixels[i + 2] = (x ^ y) & 255;
    }
  }
  return pixels;
}

async function writeJpeg(name: string, width: number, height: number, options: { grayscale?: boolean } = {}): Promise<string> {
  const file = path.join(root, name);
  let image = sharp(texture(width, height, width + height), { raw: { width, height, channels: 3 } });
  if (options.grayscale) image = image.toColourspace('b-w');
  await image.jpeg({ quality: 85 }).toFile(file);
  return file;
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-decode-'));
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

// PIL's bytes for each job: { file, size: [w, h] | null, draft } or { raw (a file of RGB bytes), width, height, size }. The resize runs
// its two passes in current Pillow's order on any Pillow: vertical first when the width grows and the height shrinks
// (Pillow 13 does so; 9.4, Debian bookworm's, always ran the horizontal pass first, 1 off in about a tenth of the
// bytes). Two resize calls give the same bytes as one with that order: both round to uint8 in between. `direct` is the
// installed Pillow's own single call, which the last test holds to the same bytes on Pillow 13 and later;
// `horizontalFirst` the other order.
const PIL_ORACLE = `
import json, sys
from PIL import Image, __version__
def resize(im, size):
    if size[0] > im.width and size[1] < im.height:
        return im.resize((im.width, size[1]), Image.BILINEAR).resize(tuple(size), Image.BILINEAR)
    return im.resize(tuple(size), Image.BILINEAR)
out = []
for job in json.loads(sys.argv[1]):
    if 'file' in job:
        im = Image.open(job['file'])
        if job['size'] is not None:
            im.draft('RGB', tuple(job['size']))
        im = im.convert('RGB')
    else:
        im = Image.frombytes('RGB', (job['width'], job['height']), open(job['raw'], 'rb').read())
    direct = im.resize(tuple(job['size']), Image.BILINEAR) if job['size'] is not None else im
    across = im.resize((job['size'][0], im.height), Image.BILINEAR).resize(tuple(job['size']), Image.BILINEAR) if job['size'] is not None else im
    if job['size'] is not None:
        im = resize(im, job['size'])
    out.append({'size': list(im.size), 'hex': im.tobytes().hex(), 'direct': direct.tobytes().hex(), 'horizontalFirst': across.tobytes().hex(), 'pillow': __version__})
print(json.dumps(out))
`;

interface PilImage { size: [number, number]; hex: string; direct: string; horizontalFirst: string; pillow: string }

function pil(python: string, jobs: object[]): PilImage[] {
  return JSON.parse(runPython(python, PIL_ORACLE, jobs)) as PilImage[];
}

function differing(a: Uint8Array, hex: string): number {
  const b = Buffer.from(hex, 'hex');
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

// The native decoder is compiled in when the build finds libjpeg's headers (setup installs them), and into the Debian
// prebuild: CI must test it there. The pip torch prebuilds are built without it (scripts/prebuild-targets.js says why).
const builtWithJpeg = nativeBinary.kind === 'prebuilt' ? nativeBinary.prebuild?.jpeg === true : true;
const nativeJpeg = hasJpegDecoder() || (process.env.CI === 'true' && builtWithJpeg) ? it : it.skip;

describeWithOracle('decoding to the base size gives PIL\'s bytes', (python) => {
  const maybe = nativeJpeg;

  maybe('decodes a JPEG and resizes it (256 -> 224, shrinking and stretching) as Image.open().convert().resize()', async () => {
    const file = await writeJpeg('a.jpg', 256, 256);
    const sizes: [number, number][] = [[224, 224], [160, 96], [300, 200]]; // [width, height]
    const expected = pil(python, sizes.map((size) => ({ file, size })));
    for (const [i, [w, h]] of sizes.entries()) {
      const decoded = await decodeFile(file, [h, w]);
      expect([decoded.width, decoded.height]).toEqual([w, h]);
      expect(differing(decoded.image, expected[i].hex)).toBe(0);
    }
  });

  maybe('scales a JPEG at least twice the base size on load, as PIL\'s draft, before the resize', async () => {
    const file = await writeJpeg('big.jpg', 700, 520);
    // 700x520 to 224: draft 1/2 (350x260); to 100x60: 1/4 (175x130); to 80x60: 1/8 (88x65).
    const sizes: [number, number][] = [[224, 224], [100, 60], [80, 60]];
    const expected = pil(python, sizes.map((size) => ({ file, size })));
    for (const [i, [w, h]] of sizes.entries()) {
      expect(differing((await decodeFile(file, [h, w])).image, expected[i].hex)).toBe(0);
    }
  });

  maybe('decodes a grayscale JPEG to RGB (replicated) and a JPEG at its own size when no base size is given', async () => {
    const gray = await writeJpeg('gray.jpg', 90, 70, { grayscale: true });
    const plain = await writeJpeg('plain.jpg', 90, 70);
    const [grayPil, plainPil] = pil(python, [{ file: gray, size: [45, 35] }, { file: plain, size: null }]);
    expect(differing((await decodeFile(gray, [35, 45])).image, grayPil.hex)).toBe(0);
    const full = await decodeFile(plain, null);
    expect([full.width, full.height]).toEqual(plainPil.size);
    expect(differing(full.image, plainPil.hex)).toBe(0);
  });

  it('resizes PNGs (decoded by sharp) as PIL\'s bilinear resize', async () => {
    const file = path.join(root, 'p.png');
    await sharp(texture(130, 90, 5), { raw: { width: 130, height: 90, channels: 3 } }).png().toFile(file);
    const [expected] = pil(python, [{ file, size: [64, 100] }]);
    expect(differing((await decodeFile(file, [100, 64])).image, expected.hex)).toBe(0);
  });

  it('resizeImage gives Image.frombytes().resize(BILINEAR) byte for byte, down and up, any aspect', async () => {
    const [width, height] = [77, 53];
    const pixels = texture(width, height, 3);
    // Both shrinking, one side only, both growing, and wider but shorter (the vertical pass first).
    const sizes: [number, number][] = [[32, 20], [77, 30], [20, 53], [150, 99], [1, 1], [100, 40], [300, 52], [20, 60]];
    const raw = path.join(root, 'pixels.rgb');
    fs.writeFileSync(raw, pixels);
    const expected = pil(python, sizes.map((size) => ({ raw, width, height, size })));
    for (const [i, [w, h]] of sizes.entries()) {
      expect(differing(await resizeImage(pixels, width, height, w, h), expected[i].hex)).toBe(0);
    }
    // The order matters for wider-but-shorter sizes, and the installed Pillow, when current, agrees in one call.
    expect(expected[5].hex).not.toBe(expected[5].horizontalFirst);
    if (Number(expected[0].pillow.split('.')[0]) >= 13) expected.forEach((e) => expect(e.direct).toBe(e.hex));
  });

  it('resizes IDX (Fashion-MNIST) images as the PyTorch peer does: gray to RGB, then resize BILINEAR', async () => {
    const [width, height] = [28, 28];
    const gray = texture(width, height, 11).filter((_, i) => i % 3 === 0);
    const header = Buffer.alloc(16);
    header[2] = 0x08;
    header[3] = 3;
    [1, height, width].forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    const file = path.join(root, 'one.idx3');
    fs.writeFileSync(file, Buffer.concat([header, gray]));
    const rgb = Buffer.from(Array.from(gray).flatMap((v) => [v, v, v]));
    const raw = path.join(root, 'gray.rgb');
    fs.writeFileSync(raw, rgb);
    const sizes: [number, number][] = [[32, 32], [20, 36]];
    const expected = pil(python, sizes.map((size) => ({ raw, width, height, size })));
    for (const [i, [w, h]] of sizes.entries()) {
      const sample = await new IdxDataset(file, undefined, { size: [h, w] }).get(0);
      expect([sample.width, sample.height]).toEqual([w, h]);
      expect(differing(sample.image, expected[i].hex)).toBe(0);
    }
  });
});

describe('sharp', () => {
  it('is loaded by the first decode that needs it, not by importing simclr', async () => {
    const dist = path.join(__dirname, '..', 'dist');
    const png = path.join(root, 'lazy.png');
    await sharp({ create: { width: 6, height: 6, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toFile(png);
    const loaded = 'const loaded = () => Object.keys(require.cache).some((k) => k.includes(`${require("path").sep}sharp${require("path").sep}`));';
    const probe = (code: string) => spawnSync(process.execPath, ['-e', `require(${JSON.stringify(dist)}); ${loaded} ${code}`], { encoding: 'utf8' });
    const imported = probe('console.log(loaded());');
    expect([imported.stderr, imported.stdout.trim()]).toEqual(['', 'false']);
    const decoded = probe(`require(${JSON.stringify(path.join(dist, 'data', 'decode'))}).decodeFile(${JSON.stringify(png)}, [4, 4])
      .then((d) => console.log(d.width, loaded()));`);
    expect([decoded.stderr, decoded.stdout.trim()]).toEqual(['', '4 true']);
  });
});

describe('decoding rejects bad input with an error', () => {
  const maybe = nativeJpeg;

  maybe('names a truncated JPEG with libjpeg\'s message', async () => {
    const file = await writeJpeg('whole.jpg', 64, 64);
    const cut = path.join(root, 'cut.jpg');
    fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, 600));
    const failure = decodeFile(cut, [32, 32]);
    await expect(failure).rejects.toThrow(SampleError);
    await expect(decodeFile(cut, [32, 32])).rejects.toThrow(/cut\.jpg.*premature end of JPEG file/);
  });

  maybe('says a JPEG file it is given by path is missing', async () => {
    await expect(decodeJpeg(path.join(root, 'gone.jpg'))).toRejectKind('Error', 'the file is missing');
    await expect(decodeFile(path.join(root, 'gone.jpg'), [8, 8])).rejects.toThrow(/gone\.jpg': the file is missing/);
  });

  maybe('rejects bytes that start like a JPEG but are not one, and empty input', async () => {
    await expect(decodeJpeg(Buffer.from([0xff, 0xd8, 0xff, 0x00, 1, 2, 3, 4]))).toRejectKind('Error', /JPEG/);
    await expect(decodeJpeg(new Uint8Array(0))).toRejectKind('Error', /empty input/i);
  });

  it('checks its arguments at the edge', async () => {
    await expect(resizeImage(new Uint8Array(11), 2, 2, 1, 1)).toRejectKind('RangeError', /12 bytes/);
    await expect(resizeImage([1, 2, 3] as unknown as Uint8Array, 1, 1, 1, 1)).toRejectKind('TypeError', 'pixels');
    await expect(resizeImage(new Uint8Array(12), 2, 2, 0, 1)).toRejectKind('RangeError', 'outWidth');
    await expect(decodeJpeg(7 as unknown as Uint8Array)).toRejectKind('TypeError', 'source');
    await expect(decodeJpeg(new Uint8Array(4), [0, 3])).toRejectKind('RangeError', 'size[0]');
  });
});
