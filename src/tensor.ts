/// <reference lib="esnext.disposable" preserve="true" />
/** Tensors: native LibTorch tensors seen from TypeScript. Data is copied only by fromTypedArray / toTypedArray. */
import { native, NativeMemoryStats, NativeTensor } from './native';
import { invalid } from './errors';

/** bfloat16 and float16: views made for a low-precision step (no typed array of their own). */
export type Dtype = 'float32' | 'float64' | 'uint8' | 'int32' | 'int64' | 'bfloat16' | 'float16';
/** 'cpu', 'cuda' or 'cuda:<index>'. */
export type Device = string;
export type TypedArrayOf<D extends string> = D extends 'float32' ? Float32Array : D extends 'float64' ? Float64Array
  : D extends 'uint8' ? Uint8Array : D extends 'int32' ? Int32Array : D extends 'int64' ? BigInt64Array : SupportedTypedArray;
/** The typed arrays a Tensor is made from and copied into; the dtype follows the array (Int32Array: int32, ...). */
export type SupportedTypedArray = Float32Array | Float64Array | Uint8Array | Int32Array | BigInt64Array;

const BYTES_PER_ELEMENT: Record<Dtype, number> = { float32: 4, float64: 8, uint8: 1, int32: 4, int64: 8, bfloat16: 2, float16: 2 };

export interface TensorOptions {
  dtype?: Dtype;
  device?: Device;
}

/**
 * A LibTorch tensor. Its memory is freed when it is garbage collected, or at once by `dispose()` (or `using`).
 */
/** The typed arrays fromTypedArray takes, as Object.prototype.toString names them. */
const DATA_TAGS = new Set(['Float32Array', 'Float64Array', 'Uint8Array', 'Int32Array', 'BigInt64Array'].map((name) => `[object ${name}]`));

export class Tensor {
  /** @internal */
  readonly handle: NativeTensor;

  /** @internal Wraps a native tensor; users create tensors with the static factories. */
  constructor(handle: NativeTensor) {
    if (!(handle instanceof native.NativeTensor)) {
      throw new TypeError('Tensors are created with Tensor.fromTypedArray, zeros, ones or randn');
    }
    this.handle = handle;
  }

  /**
   * Copies `data` into a new tensor of the given shape (default: 1-D, its length); the dtype follows the array type:
   * Float32Array float32, Float64Array float64, Uint8Array uint8, Int32Array int32 (e.g. a Loader batch's labels),
   * BigInt64Array int64. `pinMemory` (CPU tensors, CUDA machines only) puts the copy in page-locked host memory, so
   * that its upload to a GPU (by `to`, or by `Augmenter.views` for a batch of images) runs asynchronously without a
   * second host copy.
   */
  static fromTypedArray(data: SupportedTypedArray, shape: readonly number[] = [data?.length], options: { device?: Device; pinMemory?: boolean } = {}): Tensor {
    // By tag, not instanceof: a test runner's realm (jest's vm contexts) has its own Float32Array, and arrays from the
    // addon (toTypedArray) are the main realm's.
    if (!ArrayBuffer.isView(data) || !DATA_TAGS.has(Object.prototype.toString.call(data))) {
      throw invalid('a Float32Array, Float64Array, Uint8Array, Int32Array or BigInt64Array', 'data', data);
    }
    if (!Array.isArray(shape)) throw invalid('an array of non-negative integers', 'shape', shape);
    if (options.pinMemory !== undefined && typeof options.pinMemory !== 'boolean') throw invalid('a boolean', 'pinMemory', options.pinMemory);
    return new Tensor(native.fromTypedArray(data, [...shape], options.device, options.pinMemory));
  }

  static zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return new Tensor(native.zeros(shapeArg(shape), options.dtype, options.device));
  }

  static ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return new Tensor(native.ones(shapeArg(shape), options.dtype, options.device));
  }

  /** Standard normal samples from LibTorch's generator (see `manualSeed`). */
  static randn(shape: readonly number[], options: TensorOptions = {}): Tensor {
    return new Tensor(native.randn(shapeArg(shape), options.dtype, options.device));
  }

  get shape(): number[] {
    return this.handle.shape();
  }

  get dtype(): Dtype {
    return this.handle.dtype() as Dtype;
  }

  get device(): Device {
    return this.handle.device();
  }

  get disposed(): boolean {
    return this.handle.disposed();
  }

  /** True for a CPU tensor in page-locked (pinned) host memory; see `fromTypedArray`'s `pinMemory`. */
  get pinned(): boolean {
    return this.handle.pinned();
  }

  /** Number of elements. */
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Size of the data in bytes. */
  get byteLength(): number {
    const size = BYTES_PER_ELEMENT[this.dtype];
    if (size === undefined) throw new TypeError(`byteLength is not defined for dtype ${this.dtype}`);
    return this.numel * size;
  }

  /**
   * Copies the data (from any device, in the tensor's dtype, row-major) into `target`, whose byte length must be
   * `byteLength`: for writing large tensors through one reused buffer.
   */
  copyTo(target: ArrayBufferView): void {
    if (!ArrayBuffer.isView(target) || target instanceof DataView) throw invalid('a typed array or Buffer', 'target', target);
    this.handle.copyTo(target);
  }

  /** Copies the data out (from any device) as a typed array of the tensor's dtype. */
  toTypedArray(): SupportedTypedArray {
    return this.handle.toTypedArray() as SupportedTypedArray;
  }

  /** Float data as a Float32Array (any floating dtype is converted). */
  toFloat32Array(): Float32Array {
    const data = this.toTypedArray();
    return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number);
  }

  /** A copy on `device` (the same tensor when it is already there). */
  to(device: Device): Tensor {
    return new Tensor(this.handle.to(device));
  }

  /** Frees the native memory now; later use throws. Safe to call twice. */
  dispose(): void {
    this.handle.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return this.disposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

function shapeArg(shape: readonly number[]): number[] {
  if (!Array.isArray(shape)) throw invalid('an array of non-negative integers', 'shape', shape);
  return [...shape];
}

/** Seeds LibTorch's random generators (CPU and CUDA). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}

/** Sets LibTorch's intra-op threads (the package starts with all available cores). */
export function setNumThreads(threads: number): void {
  native.setNumThreads(threads);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/**
 * Exits the process with `code` as soon as no native job is queued or running: exiting while one runs destroys
 * LibTorch's globals under a running kernel, which crashed (SIGSEGV) a run given a second Ctrl-C mid-step. Jobs
 * submitted meanwhile are waited for too; the wait is the step in flight, not the rest of the run.
 */
export function exitWhenIdle(code: number): void {
  const attempt = () => {
    if (native.jobsInFlight() === 0) process.exit(code);
    setTimeout(attempt, 2);
  };
  attempt();
}

/** The version of the LibTorch the addon was compiled against. */
export function libtorchVersion(): string {
  return native.libtorchVersion();
}

/** True for 'cuda' and 'cuda:<index>'. */
export function isCudaDevice(device: Device): boolean {
  return device === 'cuda' || device.startsWith('cuda:');
}

/** The CUDA caching allocator's counters for one device, in bytes (peaks since the last reset). */
export type MemoryStats = NativeMemoryStats;

let cudnnBenchmarkChosen = false;

function cudaDeviceArg(device: Device | undefined): Device {
  const d = device ?? 'cuda';
  if (typeof d !== 'string' || !isCudaDevice(d)) throw invalid("'cuda' or 'cuda:<index>'", 'device', d, typeof d === 'string' ? 'range' : 'type');
  return d;
}

export const cuda = {
  /** True when this LibTorch has CUDA and a GPU is visible. */
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  /**
   * cuDNN's benchmark mode (PyTorch's `torch.backends.cudnn.benchmark`): each new convolution shape times cuDNN's
   * algorithms once and keeps the fastest. simclr turns it on when a model is first placed on a CUDA device, unless the
   * program chose with {@link cuda.setCudnnBenchmark}.
   */
  cudnnBenchmark: (): boolean => native.cudnnBenchmark(),
  setCudnnBenchmark(enabled: boolean): void {
    if (typeof enabled !== 'boolean') throw invalid('a boolean', 'enabled', enabled);
    cudnnBenchmarkChosen = true;
    native.setCudnnBenchmark(enabled);
  },
  /**
   * Blocks until the work queued on `device` (default 'cuda') has finished. GPU work runs asynchronously: time a region
   * of GPU work by synchronizing before reading the clock.
   */
  synchronize(device?: Device): void {
    native.cudaSynchronize(cudaDeviceArg(device));
  },
  /** The caching allocator's memory counters for `device` (default 'cuda'); needs LibTorch 2.9 or later. */
  memoryStats(device?: Device): MemoryStats {
    return native.cudaMemoryStats(cudaDeviceArg(device));
  },
  /** Starts the peaks of {@link cuda.memoryStats} again from the current values. */
  resetPeakMemoryStats(device?: Device): void {
    native.cudaResetPeakMemoryStats(cudaDeviceArg(device));
  },
};

/** @internal What placing a model on `device` turns on for CUDA: cuDNN's benchmark mode, unless the program chose. */
export function useModelDevice(device: Device): void {
  if (isCudaDevice(device) && !cudnnBenchmarkChosen) native.setCudnnBenchmark(true);
}
