/**
 * The one file that loads the native addon and declares its surface. Everything else imports `native` from here.
 * Other modules extend {@link NativeAddon} through declaration merging in their own binding declarations.
 */
import * as os from 'os';
import * as path from 'path';

/** The native Tensor object (an ObjectWrap around at::Tensor). Wrapped by `Tensor` in tensor.ts. */
export interface NativeTensor {
  shape(): number[];
  dtype(): string;
  device(): string;
  disposed(): boolean;
  toTypedArray(): Float32Array | Float64Array | Uint8Array | BigInt64Array | Int32Array;
  copyTo(target: ArrayBufferView): void;
  to(device: string): NativeTensor;
  dispose(): void;
}

export interface NativeBuildInfo {
  sourceHash: string;
  libtorchVersion: string;
  compiledWithCuda: boolean;
  config: string;
  parallel: string;
}

export interface NativeAddon {
  NativeTensor: abstract new (...args: never[]) => NativeTensor;
  fromTypedArray(data: Float32Array | Float64Array | Uint8Array | BigInt64Array, shape: number[], device?: string): NativeTensor;
  zeros(shape: number[], dtype?: string, device?: string): NativeTensor;
  ones(shape: number[], dtype?: string, device?: string): NativeTensor;
  randn(shape: number[], dtype?: string, device?: string): NativeTensor;
  manualSeed(seed: number): void;
  setNumThreads(threads: number): void;
  getNumThreads(): number;
  libtorchVersion(): string;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  buildInfo(): NativeBuildInfo;
}

/** The package root (where package.json, build/ and prebuilds/ live), from src/ or dist/. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..');

function loadFailure(cause: unknown): Error {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  return new Error(
    [
      `simclr: the native addon could not be loaded: ${reason}`,
      'Likely causes and fixes:',
      '  - No LibTorch on this machine for the prebuilt binary: apt-get install libtorch-dev libopenblas0-openmp',
      '  - A LibTorch of your own (pip torch, libtorch zip): rebuild against it with',
      '      LIBTORCH_USE_PYTORCH=1 npm rebuild simclr      or      LIBTORCH=/path/to/libtorch npm rebuild simclr',
      '  - The install step was skipped (--ignore-scripts): run npm rebuild simclr',
      '  - Run `npx simclr doctor` to see which LibTorch was found.',
    ].join('\n'),
  );
}

/** Where the loaded binary came from: a source build (build/Release) or the committed prebuild. */
export let nativeBinaryPath = '';

function load(): NativeAddon {
  try {
    // node-gyp-build looks in build/Release first (a source build), then prebuilds/<platform>-<arch>/.
    const nodeGypBuild = require('node-gyp-build') as { (dir: string): NativeAddon; resolve(dir: string): string };
    nativeBinaryPath = nodeGypBuild.resolve(PACKAGE_ROOT);
    const addon = nodeGypBuild(PACKAGE_ROOT);
    // LibTorch starts with one intra-op thread on small machines; use every core unless the user said otherwise.
    const threads = Number(process.env.SIMCLR_NUM_THREADS) || os.availableParallelism();
    addon.setNumThreads(threads);
    return addon;
  } catch (err) {
    throw loadFailure(err);
  }
}

export const native: NativeAddon = load();
