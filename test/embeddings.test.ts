import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, labelsPathFor, readNpy, writeEmbeddings, writeNpy } from '../src';
import { describeWithOracle, runPython } from './helpers/oracle';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-embed-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const features = () => Tensor.fromTypedArray(Float32Array.from({ length: 15 }, (_, i) => i * 0.5 - 3), [5, 3]);

describe('embeddings export', () => {
  it('puts the labels beside the features as <name>.labels.npy', () => {
    expect(labelsPathFor('/runs/a/emb.npy')).toBe('/runs/a/emb.labels.npy');
    expect(labelsPathFor('emb')).toBe('emb.labels.npy');
  });

  it('writes float32 features and int64 labels that read back unchanged', async () => {
    const file = path.join(dir, 'emb.npy');
    const written = await writeEmbeddings(file, features(), [4, 3, 2, 1, 0]);
    expect(written).toEqual({ featuresPath: file, labelsPath: path.join(dir, 'emb.labels.npy') });
    const back = await readNpy(file);
    expect(back.dtype).toBe('float32');
    expect(back.shape).toEqual([5, 3]);
    expect(back.data).toEqual(features().toFloat32Array());
    const labels = await readNpy(written.labelsPath);
    expect(labels).toEqual({ dtype: 'int64', shape: [5], data: new BigInt64Array([4n, 3n, 2n, 1n, 0n]) });
  });

  it('converts float64 features to float32 and accepts label Tensors', async () => {
    const file = path.join(dir, 'emb.npy');
    const doubles = Tensor.fromTypedArray(new Float64Array([0.1, 0.2]), [2, 1]);
    await writeEmbeddings(file, doubles, Tensor.fromTypedArray(new BigInt64Array([7n, 9n]), [2]));
    expect((await readNpy(file)).data).toEqual(new Float32Array([0.1, 0.2]));
    expect((await readNpy(labelsPathFor(file))).data).toEqual(new BigInt64Array([7n, 9n]));
  });

  it('aligns the data to 64 bytes as NPY 1.0 asks', async () => {
    const file = path.join(dir, 'x.npy');
    await writeNpy(file, new Float32Array(6), [2, 3]);
    const bytes = fs.readFileSync(file);
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
    const dataStart = 10 + bytes.readUInt16LE(8);
    expect(dataStart % 64).toBe(0);
    expect(bytes[dataStart - 1]).toBe(0x0a);
    expect(bytes.length).toBe(dataStart + 24);
  });

  it('replaces an existing file whole and leaves no temporary files', async () => {
    const file = path.join(dir, 'emb.npy');
    fs.writeFileSync(file, 'old contents');
    await writeEmbeddings(file, features(), [0, 0, 0, 0, 0]);
    expect((await readNpy(file)).shape).toEqual([5, 3]);
    expect(fs.readdirSync(dir).sort()).toEqual(['emb.labels.npy', 'emb.npy']);
  });

  it('fails without a trace when the folder does not exist', async () => {
    await expect(writeEmbeddings(path.join(dir, 'missing', 'emb.npy'), features(), [0, 1, 2, 3, 4])).rejects.toThrow(/ENOENT/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('rejects bad arguments with errors naming them', async () => {
    const file = path.join(dir, 'emb.npy');
    await expect(writeEmbeddings(file, features(), [0, 1])).rejects.toThrow(/one label per feature row \(5\) for labels/);
    await expect(writeEmbeddings(file, features(), [0, 1, 2, 3, 4.5])).rejects.toThrow(RangeError);
    await expect(writeEmbeddings(file, Tensor.ones([5]), [0, 1, 2, 3, 4])).rejects.toThrow(/2-D Tensor/);
    await expect(writeEmbeddings(file, Tensor.zeros([1, 2], { dtype: 'uint8' }), [0])).rejects.toThrow(/floating point Tensor/);
    await expect(writeEmbeddings(file, features(), Tensor.ones([5]))).rejects.toThrow(/integer Tensor for labels/);
    await expect(writeEmbeddings('', features(), [0, 1, 2, 3, 4])).rejects.toThrow(/featuresPath/);
    await expect(writeNpy(file, new Float32Array(5), [2, 3])).rejects.toThrow(/6 elements/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describeWithOracle('embeddings export read by numpy', (python) => {
  it('numpy.load reads both files with their dtypes, shapes and values', async () => {
    const file = path.join(dir, 'emb.npy');
    await writeEmbeddings(file, features(), [4, 3, 2, 1, 2 ** 40]);
    const script = `
import json, sys
import numpy as np
args = json.loads(sys.argv[1])
x = np.load(args['features']); y = np.load(args['labels'])
print(json.dumps({'xd': str(x.dtype), 'xs': list(x.shape), 'xc': bool(x.flags['C_CONTIGUOUS']), 'x': x.ravel().tolist(),
                  'yd': str(y.dtype), 'ys': list(y.shape), 'y': y.tolist()}))`;
    const loaded = JSON.parse(runPython(python, script, { features: file, labels: labelsPathFor(file) }));
    expect(loaded).toEqual({
      xd: 'float32', xs: [5, 3], xc: true, x: Array.from(features().toFloat32Array()),
      yd: 'int64', ys: [5], y: [4, 3, 2, 1, 2 ** 40],
    });
  });

  it('reads float32 and int64 arrays that numpy wrote', async () => {
    const script = `
import json, sys
import numpy as np
args = json.loads(sys.argv[1])
np.save(args['x'], np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 8)
np.save(args['y'], np.array([-5, 0, 2**50], dtype=np.int64))`;
    runPython(python, script, { x: path.join(dir, 'x.npy'), y: path.join(dir, 'y.npy') });
    const x = await readNpy(path.join(dir, 'x.npy'));
    expect(x.shape).toEqual([2, 3, 4]);
    expect(x.data).toEqual(Float32Array.from({ length: 24 }, (_, i) => i / 8));
    expect((await readNpy(path.join(dir, 'y.npy'))).data).toEqual(new BigInt64Array([-5n, 0n, 2n ** 50n]));
  });
});
