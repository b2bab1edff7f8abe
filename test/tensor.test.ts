import { Tensor, manualSeed, getNumThreads, setNumThreads, libtorchVersion, cuda } from '../src';
import * as os from 'os';

describe('Tensor', () => {
  it.each([
    ['float32', new Float32Array([1.5, -2, 3, 4, 5, 6])],
    ['float64', new Float64Array([1.5, -2, 3, 4, 5, 6])],
    ['uint8', new Uint8Array([0, 1, 2, 253, 254, 255])],
    ['int64', new BigInt64Array([1n, -2n, 3n, 2n ** 40n, 5n, 6n])],
  ] as const)('round-trips %s data through fromTypedArray and toTypedArray', (dtype, data) => {
    const t = Tensor.fromTypedArray(data, [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe(dtype);
    expect(t.device).toBe('cpu');
    expect(t.toTypedArray()).toEqual(data);
  });

  it('copies the data, so later writes to the source array do not change the tensor', () => {
    const data = new Float32Array([1, 2, 3]);
    const t = Tensor.fromTypedArray(data, [3]);
    data[0] = 100;
    expect(Array.from(t.toTypedArray() as Float32Array)).toEqual([1, 2, 3]);
  });

  it('respects the byte offset of a typed array view', () => {
    const buffer = new Float32Array([9, 9, 1, 2, 3, 4]);
    const view = buffer.subarray(2);
    expect(Array.from(Tensor.fromTypedArray(view, [2, 2]).toTypedArray() as Float32Array)).toEqual([1, 2, 3, 4]);
  });

  it('copyTo writes the raw data into a caller-owned buffer of exactly byteLength bytes', () => {
    const t = Tensor.fromTypedArray(Float64Array.from([1.5, -2, 3]), [3]);
    expect(t.byteLength).toBe(24);
    const target = Buffer.alloc(32, 0xff);
    t.copyTo(target.subarray(8, 32));
    expect(Array.from(new Float64Array(target.buffer, target.byteOffset + 8, 3))).toEqual([1.5, -2, 3]);
    expect(target.readBigUInt64LE(0)).toBe(0xffffffffffffffffn); // bytes before the view are untouched
    const bytes = Tensor.fromTypedArray(Uint8Array.from([7, 8]), [2]);
    const out = new Uint8Array(2);
    bytes.copyTo(out);
    expect(Array.from(out)).toEqual([7, 8]);
    expect(() => t.copyTo(Buffer.alloc(16))).toThrowKind('RangeError', 'Expected a target of 24 bytes but received 16');
    expect(() => t.copyTo([1, 2, 3] as never)).toThrowKind('TypeError', 'target');
  });

  it('creates zeros, ones and seeded randn', () => {
    expect(Array.from(Tensor.zeros([2, 2]).toTypedArray() as Float32Array)).toEqual([0, 0, 0, 0]);
    expect(Tensor.ones([3], { dtype: 'float64' }).toTypedArray()).toEqual(new Float64Array([1, 1, 1]));
    manualSeed(1);
    const a = Tensor.randn([5]).toFloat32Array();
    manualSeed(1);
    const b = Tensor.randn([5]).toFloat32Array();
    expect(a).toEqual(b);
    // torch.manual_seed(1); torch.randn(3) in PyTorch gives 0.6614, 0.2669, 0.0617
    manualSeed(1);
    const c = Tensor.randn([3]).toFloat32Array();
    expect(c[0]).toBeCloseTo(0.6614, 4);
    expect(c[1]).toBeCloseTo(0.2669, 4);
    expect(c[2]).toBeCloseTo(0.0617, 4);
  });

  it('handles empty tensors and scalars', () => {
    expect(Tensor.zeros([0, 3]).toTypedArray().length).toBe(0);
    const scalar = Tensor.fromTypedArray(new Float32Array([7]), []);
    expect(scalar.shape).toEqual([]);
    expect(scalar.numel).toBe(1);
  });

  it('moves to the cpu device and refuses cuda with a clear error when there is none', () => {
    const t = Tensor.ones([2]);
    expect(t.to('cpu').toTypedArray()).toEqual(new Float32Array([1, 1]));
    if (!cuda.isAvailable()) {
      expect(() => t.to('cuda')).toThrow(/CUDA is not available/);
      expect(() => Tensor.zeros([2], { device: 'cuda:0' })).toThrowKind('RangeError');
    }
    expect(() => t.to('tpu')).toThrowKind('RangeError', /Expected 'cpu', 'cuda' or 'cuda:<index>'/);
  });

  it('dispose frees the tensor; later use is an error, a second dispose is harmless', () => {
    const t = Tensor.ones([4]);
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(() => t.shape).toThrow(/disposed/);
    expect(() => t.toTypedArray()).toThrow(/disposed/);
    expect(() => t.dispose()).not.toThrow();
    expect(t.toString()).toBe('Tensor(disposed)');
  });

  it('supports `using` (Symbol.dispose)', () => {
    let escaped: Tensor;
    {
      using t = Tensor.ones([2]);
      escaped = t;
      expect(t.disposed).toBe(false);
    }
    expect(escaped.disposed).toBe(true);
  });

  it('rejects bad input with TypeError or RangeError naming the argument', () => {
    expect(() => Tensor.fromTypedArray(new Float32Array(5), [2, 3])).toThrowKind('RangeError', 'needs 6 elements but data has 5');
    expect(() => Tensor.fromTypedArray([1, 2] as unknown as Float32Array, [2])).toThrowKind('TypeError');
    expect(() => Tensor.fromTypedArray(new Int16Array(2) as unknown as Float32Array, [2])).toThrowKind('TypeError');
    expect(() => Tensor.zeros([2, -1])).toThrowKind('RangeError', 'shape[1]');
    expect(() => Tensor.zeros([NaN])).toThrowKind('RangeError', 'shape[0]');
    expect(() => Tensor.zeros([1.5])).toThrowKind('RangeError');
    expect(() => Tensor.zeros('2' as unknown as number[])).toThrowKind('TypeError');
    expect(() => Tensor.zeros([2], { dtype: 'float16' as never })).toThrowKind('RangeError', "Expected one of 'float32'");
    expect(() => Tensor.randn([2], { dtype: 'uint8' })).toThrowKind('TypeError', 'floating dtype');
    expect(() => Tensor.zeros([2 ** 30, 2 ** 30])).toThrowKind('RangeError', 'too many elements');
    expect(() => new Tensor({} as never)).toThrowKind('TypeError');
  });
});

describe('runtime', () => {
  it('starts with every available core as intra-op threads and can change them', () => {
    expect(getNumThreads()).toBe(Number(process.env.SIMCLR_NUM_THREADS) || os.availableParallelism());
    setNumThreads(1);
    expect(getNumThreads()).toBe(1);
    setNumThreads(os.availableParallelism());
    expect(() => setNumThreads(0)).toThrowKind('RangeError');
  });

  it('reports the LibTorch version and CUDA state', () => {
    expect(libtorchVersion()).toMatch(/^\d+\.\d+\.\d+/);
    expect(typeof cuda.isAvailable()).toBe('boolean');
    expect(cuda.deviceCount()).toBeGreaterThanOrEqual(0);
    expect(() => manualSeed(-1)).toThrowKind('RangeError');
  });
});
