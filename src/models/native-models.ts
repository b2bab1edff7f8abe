/** The native model surface (native/model_binding.cc), added to {@link NativeAddon} by declaration merging. */
import type { NativeTensor } from '../native';

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
  stem: 'imagenet' | 'cifar';
  head: { inDim: number; hiddenDim: number; outDim: number; layers: number; batchNorm: boolean } | null;
}

/** The ObjectWrap around a C++ SimCLRModel (a plain Encoder has no head). */
export interface NativeModel {
  forward(x: NativeTensor): Promise<{ h: NativeTensor; z?: NativeTensor }>;
  embed(x: NativeTensor): Promise<NativeTensor>;
  forwardBackward(x: NativeTensor, gradOutput: NativeTensor): Promise<NativeTensor>;
  gradients(): NativeTensorMap;
  zeroGrad(): void;
  train(mode?: boolean): void;
  isTraining(): boolean;
  to(device: string): void;
  device(): string;
  parameterCount(): number;
  describe(): NativeModelDescription;
  stateDict(): Promise<NativeTensorMap>;
  loadStateDict(state: NativeTensorMap, strict?: boolean): Promise<NativeLoadReport>;
  stateDictBytes(): Promise<Buffer>;
  loadStateDictBytes(bytes: Uint8Array, strict?: boolean): Promise<NativeLoadReport>;
}

export interface NativeModelOptions {
  backbone: string;
  outDim?: number;
  stem?: 'imagenet' | 'cifar';
  zeroInitResidual?: boolean;
  device?: string;
  head?: { layers?: number; hiddenDim?: number; outDim?: number; batchNorm?: boolean };
}

declare module '../native' {
  interface NativeAddon {
    NativeModel: abstract new (...args: never[]) => NativeModel;
    createModel(options: NativeModelOptions): Promise<NativeModel>;
    /** Parses torch.save bytes with the restricted unpickler (never runs code from the file). */
    readStateDict(bytes: Uint8Array): Promise<NativeTensorMap>;
    /** torch.save-compatible zip bytes of a dict of tensors. */
    writeStateDict(state: NativeTensorMap): Promise<Buffer>;
  }
}
