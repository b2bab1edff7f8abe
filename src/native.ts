/**
 * The one file that loads the native addon and declares its whole surface, grouped by native module. Only the
 * facades import it: tensor.ts, doctor.ts, models/, ops/, augment/ and eval/ (test/architecture.test.ts checks).
 * Types here describe what crosses the N-API boundary; the facades check user input and wrap handles in Tensors.
 */
import * as os from 'os';
import * as path from 'path';

// ── runtime: seeds, threads, versions, CUDA, build info ─────────────────────────────────────────────────────────

export interface NativeBuildInfo {
  sourceHash: string;
  libtorchVersion: string;
  compiledWithCuda: boolean;
  compiledWithNccl: boolean;
  config: string;
  parallel: string;
}

interface RuntimeModule {
  manualSeed(seed: number): void;
  setNumThreads(threads: number): void;
  getNumThreads(): number;
  libtorchVersion(): string;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudnnBenchmark(): boolean;
  setCudnnBenchmark(enabled: boolean): void;
  /** Blocks until the device's queued work is done (nothing on 'cpu'). */
  cudaSynchronize(device: string): void;
  cudaMemoryStats(device: string): NativeMemoryStats;
  cudaResetPeakMemoryStats(device: string): void;
  buildInfo(): NativeBuildInfo;
  retainFreedHostMemory(): boolean;
  /** Native jobs submitted whose work has not finished (queued or running). */
  jobsInFlight(): number;
}

/** The CUDA caching allocator's counters for one device, in bytes. */
export interface NativeMemoryStats {
  allocated: number;
  peakAllocated: number;
  reserved: number;
  peakReserved: number;
}

// ── tensor: the Tensor object (an ObjectWrap around at::Tensor) and its factories; wrapped by tensor.ts ──────────

export interface NativeTensor {
  shape(): number[];
  dtype(): string;
  device(): string;
  disposed(): boolean;
  /** True for a CPU tensor in page-locked memory. */
  pinned(): boolean;
  toTypedArray(): Float32Array | Float64Array | Uint8Array | BigInt64Array | Int32Array;
  copyTo(target: ArrayBufferView): void;
  to(device: string): NativeTensor;
  dispose(): void;
}

interface TensorModule {
  NativeTensor: abstract new (...args: never[]) => NativeTensor;
  fromTypedArray(data: Float32Array | Float64Array | Uint8Array | Int32Array | BigInt64Array, shape: number[], device?: string, pinMemory?: boolean): NativeTensor;
  zeros(shape: number[], dtype?: string, device?: string): NativeTensor;
  ones(shape: number[], dtype?: string, device?: string): NativeTensor;
  randn(shape: number[], dtype?: string, device?: string): NativeTensor;
}

// ── models & state dicts: ResNet encoders and SimCLR models (torchvision names), torch.save I/O; see models/ ──────

/** Named tensors as they cross the boundary, in state-dict order. */
export type NativeTensorMap = Record<string, NativeTensor>;

export interface NativeLoadReport {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export interface NativeModelDescription {
  backbone: string;
  featureDim: number;
  outDim: number;
  stem: string;
  head: { inDim: number; hiddenDim: number; outDim: number; layers: number; batchNorm: boolean } | null;
}

/** How a forward pass runs (resolved from 'auto' by the facade); outputs are float32 either way. */
export interface NativeForwardOptions {
  precision: 'fp32' | 'bf16' | 'fp16';
  memoryFormat: 'contiguous' | 'channelsLast';
}

/** The ObjectWrap around a C++ SimCLRModel (a plain Encoder has no head). */
export interface NativeModel {
  forward(x: NativeTensor, options: NativeForwardOptions): Promise<{ h: NativeTensor; z?: NativeTensor }>;
  embed(x: NativeTensor, options: NativeForwardOptions): Promise<NativeTensor>;
  forwardBackward(x: NativeTensor, gradOutput: NativeTensor): Promise<NativeTensor>;
  gradients(): NativeTensorMap;
  zeroGrad(): void;
  train(mode?: boolean): void;
  isTraining(): boolean;
  to(device: string, dtype: string): void;
  device(): string;
  dtype(): string;
  parameterCount(): number;
  describe(): NativeModelDescription;
  stateDict(): Promise<NativeTensorMap>;
  loadStateDict(state: NativeTensorMap, strict?: boolean): Promise<NativeLoadReport>;
  stateDictBytes(): Promise<Uint8Array>;
  loadStateDictBytes(bytes: Uint8Array, strict?: boolean): Promise<NativeLoadReport>;
}

/** Complete: the facade (models/) fills in every default. `head` absent: an encoder alone; `head.hiddenDim` absent: as
 * wide as the encoder's output. */
export interface NativeModelOptions {
  backbone: string;
  outDim: number;
  stem: string;
  zeroInitResidual: boolean;
  device?: string;
  head?: { layers: number; hiddenDim?: number; outDim: number; batchNorm: boolean };
}

interface ModelModule {
  NativeModel: abstract new (...args: never[]) => NativeModel;
  createModel(options: NativeModelOptions): Promise<NativeModel>;
  /** The backbones the native factory builds (the TS list, `Backbones.names`, is checked against it by a test). */
  readonly backboneNames: readonly string[];
  /** The stems it builds (the TS list, `STEMS`, is checked against it by a test). */
  readonly stemNames: readonly string[];
  /** Parses torch.save bytes with the restricted unpickler (never runs code from the file). */
  readStateDict(bytes: Uint8Array): Promise<NativeTensorMap>;
  /** torch.save-compatible zip bytes of a dict of tensors. */
  writeStateDict(state: NativeTensorMap): Promise<Uint8Array>;
}

// ── NT-Xent: the fused loss and its gradient; see ops/nt-xent.ts ────────────────────────────────────────────────

interface NtXentModule {
  /** Temperatures at or below this are an error (defined once, in native/core/nt_xent.h). */
  readonly ntXentMinTemperature: number;
  /**
   * Loss and dLoss/dz. `method` picks the implementation: 'fused' (the default, what ntXent uses), 'autograd' (the
   * autograd Function a training step calls, then backward()) or 'reference' (unfused ATen autograd, O(rows²)
   * memory). The last two exist for tests.
   */
  ntXent(z: NativeTensor, temperature: number, views: number, method?: 'fused' | 'autograd' | 'reference'):
    Promise<{ loss: number; grad: NativeTensor }>;
  /** The data-parallel form: this rank's rows (zLocal, at zAll[offset..]) against every rank's rows (zAll). */
  ntXentLocalRows(zLocal: NativeTensor, zAll: NativeTensor, offset: number, temperature: number, views: number):
    Promise<{ loss: number; gradLocal: NativeTensor; gradAll: NativeTensor }>;
}

// ── distributed: c10d process groups (TCPStore rendezvous, Gloo / NCCL); see ops/process-group.ts ──────────────

export interface NativeProcessGroupOptions {
  masterAddr: string;
  masterPort: number;
  rank: number;
  worldSize: number;
  backend: 'gloo' | 'nccl';
  timeoutMs: number;
  /** The launcher serves the store (torchrun's agent); rank 0 connects to it instead of serving one. */
  agentStore: boolean;
}

/** Payload bytes this rank sent into each kind of collective, and how many calls. */
export interface NativeCommunicationCounters {
  allReduceBytes: number;
  allReduceCalls: number;
  allGatherBytes: number;
  allGatherCalls: number;
  broadcastBytes: number;
  broadcastCalls: number;
}

/** A joined process group. Collectives run on the compute thread, in call order (every rank must call them in the
 * same order); store keys are for coordination outside collectives. */
export interface NativeProcessGroup {
  rank(): number;
  size(): number;
  backend(): 'gloo' | 'nccl';
  timeoutMs(): number;
  counters(): NativeCommunicationCounters;
  allReduceSum(tensor: NativeTensor): Promise<NativeTensor>;
  allGather(tensor: NativeTensor): Promise<NativeTensor>;
  allGatherRows(tensor: NativeTensor): Promise<NativeTensor>;
  broadcast(tensor: NativeTensor, root: number): Promise<NativeTensor>;
  setKey(key: string, value: string): Promise<void>;
  waitKey(key: string, timeoutMs: number): Promise<string>;
}

interface DistributedModule {
  /** Joins a group (the rendezvous blocks up to the timeout, off the JS thread). */
  createProcessGroup(options: NativeProcessGroupOptions): Promise<NativeProcessGroup>;
  /** The backends compiled into this binary: 'gloo', and 'nccl' for CUDA builds with the NCCL headers. */
  distributedBackends(): string[];
}

// ── augmentation & eval view: SimCLR and multi-crop views, the functional ops, the eval view; see augment/ ──────

/**
 * The parameters of `augmentViews` (N = 2B views) or `augmentViewGroups` (N = B x the views of all groups): rows are
 * ordered group by group, and inside a group row v * B + i is view v of image i.
 */
export interface NativeViewParams {
  boxes: Float64Array; // N x 4: top, left, height, width
  flip: Uint8Array;
  jitterApply: Uint8Array;
  jitterFactors: Float32Array; // N x 4: brightness, contrast, saturation, hue
  jitterOrder: Uint8Array; // N x 4: permutation of 0..3
  grayscale: Uint8Array;
  blurSigma: Float32Array; // 0 = no blur
}

/** Which implementation builds the views on the CPU; other devices always run the generic ATen ops. */
interface NativeAugmentKernels {
  /** The batched ATen ops every device runs, instead of the fused CPU kernels: for tests. */
  generic?: boolean;
  /** The fused CPU kernels in scalar C++, the reference the vectorised (AVX2) ones are bit-identical to: for tests. */
  scalar?: boolean;
}

export interface NativeAugmentOptions extends NativeAugmentKernels {
  size: number;
  blurKernel: number;
  mean: number[];
  std: number[];
  device?: string;
  dtype?: 'float32' | 'bfloat16' | 'float16';
}

/** One resolution group of views: `views` views of each image, `size` px, blurred with `blurKernel` taps. */
export interface NativeViewGroup {
  views: number;
  size: number;
  blurKernel: number;
}

export interface NativeAugmentGroupsOptions extends NativeAugmentKernels {
  groups: NativeViewGroup[];
  mean: number[];
  std: number[];
  device?: string;
  dtype?: 'float32' | 'bfloat16' | 'float16';
}

interface AugmentModule {
  augmentViews(images: NativeTensor, params: NativeViewParams, options: NativeAugmentOptions): Promise<NativeTensor>;
  /** An RGB image resized as PIL's `Image.resize(size, BILINEAR)` (the seed's torchvision Resize), off the JS thread. */
  resizeImage(pixels: Uint8Array, width: number, height: number, outWidth: number, outHeight: number): Promise<Uint8Array>;
  /**
   * A JPEG (bytes, or a file path read in the same job) decoded to RGB as Pillow does and, with outWidth x outHeight
   * > 0, scaled on load as PIL's draft and resized as PIL's BILINEAR; null for a file that is no JPEG, colour spaces
   * left to sharp (CMYK) or without libjpeg. Damaged data and unreadable files reject.
   */
  decodeJpeg(source: Uint8Array | string, outWidth: number, outHeight: number): Promise<{ image: Uint8Array; width: number; height: number } | null>;
  /** Whether the addon was built with libjpeg (else decodeJpeg always resolves null). */
  readonly jpegDecoder: boolean;
  /** The uint8 batch `B x H x W x 3` of B decoded RGB images of `height` x `width`, each copied once. */
  stackImages(images: Uint8Array[], height: number, width: number): NativeTensor;
  /** One float32 tensor per group, `V_g*B x 3 x S_g x S_g`, view-major. */
  augmentViewGroups(images: NativeTensor, params: NativeViewParams, options: NativeAugmentGroupsOptions): Promise<NativeTensor[]>;
  resizedCrop(images: NativeTensor, boxes: Float64Array, size: number[], flip?: Uint8Array): Promise<NativeTensor>;
  hflip(images: NativeTensor): Promise<NativeTensor>;
  adjustBrightness(images: NativeTensor, factors: Float32Array): Promise<NativeTensor>;
  adjustContrast(images: NativeTensor, factors: Float32Array): Promise<NativeTensor>;
  adjustSaturation(images: NativeTensor, factors: Float32Array): Promise<NativeTensor>;
  adjustHue(images: NativeTensor, factors: Float32Array): Promise<NativeTensor>;
  rgbToGrayscale(images: NativeTensor, channels: number): Promise<NativeTensor>;
  gaussianBlur(images: NativeTensor, kernelSize: number, sigmas: Float32Array): Promise<NativeTensor>;
  normalize(images: NativeTensor, mean: number[], std: number[]): Promise<NativeTensor>;
  /** The evaluation view: uint8 B x H x W x 3 → whole image resized to `size`, normalised, float32 B x 3 x S x S. */
  prepareImages(images: NativeTensor, options: { size: number; mean: number[]; std: number[]; device?: string }): Promise<NativeTensor>;
}

// ── training step: forward of all views → NT-Xent → backward → optimiser step, one call; see ops/train-step.ts ───

/** Every option of a native optimiser: the native side has no defaults, the facade passes all. */
export interface NativeOptimizerOptions {
  optimizer: string;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  trustCoefficient: number;
}

/** The optimiser (with fp16's loss scaler) of a model; the training step updates it. */
export interface NativeOptimizer {
  /** Buffers as `<parameter>/<kind>` (and `amp/*`) names with their tensors (copies), and the optimiser's step count. */
  state(): { names: string[]; tensors: NativeTensor[]; steps: number };
  loadState(names: string[], tensors: NativeTensor[], steps: number): void;
}

/** Every option of a step, complete (precision and memory format already resolved from 'auto'). */
export interface NativeTrainStepOptions {
  lr: number;
  temperature: number;
  views: number;
  precision: 'fp32' | 'bf16' | 'fp16';
  memoryFormat: 'contiguous' | 'channelsLast';
  accumulationSteps: number;
  /** Data-parallel: ask every rank to stop after this step (the result's `stop`). */
  stopRequested: boolean;
}

/** A data-parallel optimiser's group and how its steps synchronise; complete. */
export interface NativeDataParallelOptions {
  group: NativeProcessGroup;
  globalBatchNorm: boolean;
  gatherBackward: 'sum' | 'own';
  bucketBytes: number;
}

/** A step's scalars on their way to the host (an opaque handle for readTrainStepValues). */
export type NativeTrainStepValues = { readonly __brand: 'NativeTrainStepValues' };

/** Settles once the step is queued on its device (on the CPU: once it ran); its scalars come by readTrainStepValues. */
export interface NativeTrainStepResult {
  values: NativeTrainStepValues;
  images: number;
  applied: boolean;
}

export interface NativeTrainStepValuesRead {
  loss: number;
  localLoss: number;
  stop: boolean;
}

interface TrainStepModule {
  /** The optimisers the native step has (the TS list, `OPTIMIZERS`, is checked against it by a test). */
  readonly optimizerNames: readonly string[];
  /** The largest momentum and AdamW beta accepted (native/core/optimizer.h). */
  readonly maxMomentum: number;
  /** The most calls accumulated into one update (native/core/train_step.h). */
  readonly maxAccumulationSteps: number;
  createOptimizer(model: NativeModel, options: NativeOptimizerOptions, dataParallel?: NativeDataParallelOptions): NativeOptimizer;
  trainStep(model: NativeModel, optimizer: NativeOptimizer, views: NativeTensor[], options: NativeTrainStepOptions):
    Promise<NativeTrainStepResult>;
  /** Waits (off the JS thread, beside the next step) for a step's scalars to reach the host. */
  readTrainStepValues(values: NativeTrainStepValues): Promise<NativeTrainStepValuesRead>;
}

// ── evaluation: kNN monitor and linear probe on frozen features; see eval/ ──────────────────────────────────────

/** Complete but for `numClasses` (absent: the largest bank label + 1); the facade (eval/knn.ts) fills in the rest. */
export interface NativeKnnOptions {
  /** Neighbours that vote (fewer when the bank is smaller). */
  k: number;
  /** Each vote weighs exp(similarity / temperature). */
  temperature: number;
  /** Number of classes. */
  numClasses?: number;
  /** Query rows per similarity block; peak memory is about chunkSize x bank rows floats. */
  chunkSize: number;
}

/** Complete but for `numClasses` (absent: the largest label + 1); the facade (eval/linear-probe.ts) fills in the rest. */
export interface NativeLinearProbeOptions {
  /** Passes over the training split. */
  epochs: number;
  /** Rows per Adam step. */
  batchSize: number;
  /** Adam's initial learning rate, cosine-decayed to 0. */
  learningRate: number;
  /** L2 penalties on the weights (not the bias) to choose from on held-out rows; one: that penalty. */
  weightDecays: number[];
  /** Share of the training rows held out to choose the weight decay, in (0, 1); unused for one penalty. */
  validationFraction: number;
  /** Seed of the shuffling order and the held-out rows; the weights start at zero. */
  seed: number;
  /** Number of classes. */
  numClasses?: number;
}

export interface NativeLinearProbeResult {
  weight: NativeTensor;
  bias: NativeTensor;
  testPredictions: NativeTensor;
  trainLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
  weightDecay: number;
  validationAccuracies: number[];
}

interface EvalModule {
  knnPredict(bankFeatures: NativeTensor, bankLabels: NativeTensor, queryFeatures: NativeTensor, options: NativeKnnOptions): Promise<NativeTensor>;
  trainLinearProbe(trainFeatures: NativeTensor, trainLabels: NativeTensor, testFeatures: NativeTensor, testLabels: NativeTensor,
    options: NativeLinearProbeOptions): Promise<NativeLinearProbeResult>;
}

/** Everything the addon exports. */
export interface NativeAddon extends RuntimeModule, TensorModule, ModelModule, NtXentModule, DistributedModule, AugmentModule,
  TrainStepModule, EvalModule {}

// ── loading ──────────────────────────────────────────────────────────────────────────────────────────────────────

/** The package root (where package.json, build/ and prebuilds/ live), from src/ or dist/. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..');

/** A LibTorch as scripts/libtorch.js describes it: where it is, how it was found, what it is. */
export interface LibTorchDescription {
  source: 'LIBTORCH' | 'python' | 'system';
  how: string;
  libDir: string;
  version: string;
  cxx11abi: boolean;
  cuda: boolean;
  python?: string;
}

/** The binary that loaded and why (scripts/binary.js chooses it before anything is loaded). */
export interface BinaryChoice {
  kind: 'source build' | 'prebuilt';
  path: string;
  /** The LibTorch it links: as found at load for a prebuild, as recorded at build time for a source build. */
  libtorch?: LibTorchDescription;
  /** For a prebuild: what it was built against, whether NCCL and the native JPEG decoder are compiled in. */
  prebuild?: { file: string; builtAgainst: string; nccl: boolean; jpeg: boolean };
  /** LibTorch libraries loaded by full path first, so that the prebuild's sonames resolve to them. */
  preload: string[];
}

const binary = require('../scripts/binary') as {
  chooseBinary(): BinaryChoice;
  loadBinary(choice: BinaryChoice): unknown;
};

function loadFailure(cause: unknown, choice: BinaryChoice): Error {
  const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  const libtorch = choice.libtorch ? `LibTorch ${choice.libtorch.version} (${choice.libtorch.how}, ${choice.libtorch.libDir})` : 'its LibTorch';
  return new Error(
    [
      `simclr: the native addon (${choice.kind}: ${choice.path}) could not be loaded with ${libtorch}: ${reason}`,
      'Likely causes and fixes:',
      ...(choice.kind === 'source build'
        ? ['  - The LibTorch it was built against moved or changed: npm rebuild simclr (or delete its build/ folder to use a prebuild)']
        : ['  - A broken or partial torch install: reinstall it (pip install --force-reinstall torch), or',
          '    build against it: npm rebuild simclr   (needs cmake and g++)']),
      '  - Debian\'s LibTorch: apt-get install libtorch1.13 libopenblas0-openmp',
      '  - Run `npx simclr doctor` (or node -e "require(\'simclr\')") to see which LibTorch was found.',
    ].join('\n'),
  );
}

/** The binary that loaded, and why (`simclr doctor` prints it). */
export let nativeBinary: BinaryChoice;

/**
 * Whether freed host memory is kept for reuse (set at load): glibc's heap, and LibTorch's CPU tensors of 32 MiB and
 * more, which glibc maps and unmaps every time. Each training step frees and reallocates tens of MB of activations;
 * with glibc's adaptive defaults part of that went back to the kernel and was faulted in again, zeroed, the next step
 * (README, Threads and host memory, has the counts). Left as glibc has it
 * when its own variables (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_) are set or SIMCLR_MALLOC=default.
 */
export let hostMemoryRetained = false;

function retainFreedHostMemory(addon: NativeAddon): boolean {
  const env = process.env;
  if (env.SIMCLR_MALLOC === 'default' || env.MALLOC_MMAP_THRESHOLD_ !== undefined || env.MALLOC_TRIM_THRESHOLD_ !== undefined) return false;
  return addon.retainFreedHostMemory();
}

function load(): NativeAddon {
  // Throws its own clear error (nothing found, or no prebuild fits) before anything is loaded.
  nativeBinary = binary.chooseBinary();
  let addon: NativeAddon;
  try {
    addon = binary.loadBinary(nativeBinary) as NativeAddon;
  } catch (err) {
    throw loadFailure(err, nativeBinary);
  }
  // LibTorch starts with one intra-op thread on small machines; use every core unless the user said otherwise.
  const threads = Number(process.env.SIMCLR_NUM_THREADS) || os.availableParallelism();
  addon.setNumThreads(threads);
  hostMemoryRetained = retainFreedHostMemory(addon);
  return addon;
}

export const native: NativeAddon = load();
