/** State dicts: named tensors, read from and written to files Python's torch.save / torch.load understand. */
import { promises as fs } from 'fs';
import { native, NativeTensorMap } from '../native';
import { Tensor } from '../tensor';
import { invalid, withCallerStack } from '../errors';
import { writeFileAtomic } from '../atomic-file';

/** Parameter and buffer tensors by their PyTorch names (e.g. `layer1.0.conv1.weight`). */
export type StateDict = Record<string, Tensor>;

export interface LoadStateDictOptions {
  /** Missing or unexpected keys are an error (the default, as in PyTorch); otherwise they are reported. */
  strict?: boolean;
}

/** What a non-strict load did not match. */
export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/**
 * Reads a file written by Python's `torch.save(model.state_dict())` (zip format, or the legacy format), e.g. a
 * torchvision `resnet50-*.pth`. Only dicts of tensors are read: the file cannot run code. Tensors are on the CPU.
 */
export async function readStateDict(path: string): Promise<StateDict> {
  if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
  const bytes = await fs.readFile(path);
  return fromNative(await withCallerStack(native.readStateDict(bytes)));
}

/** Writes `state` as a file Python's `torch.load` reads (and `load_state_dict` accepts), atomically. */
export async function writeStateDict(path: string, state: StateDict): Promise<void> {
  if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
  const bytes = await withCallerStack(native.writeStateDict(toNative(state, 'state')));
  await writeFileAtomic(path, [bytes]);
}

/** @internal */
export function fromNative(map: NativeTensorMap): StateDict {
  const out: StateDict = {};
  for (const [key, handle] of Object.entries(map)) out[key] = new Tensor(handle);
  return out;
}

/** @internal */
export function toNative(state: StateDict, name: string): NativeTensorMap {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) throw invalid('an object of Tensors', name, state);
  const out: NativeTensorMap = {};
  for (const [key, tensor] of Object.entries(state)) {
    if (!(tensor instanceof Tensor)) throw invalid('a Tensor', `${name}['${key}']`, tensor);
    out[key] = tensor.handle;
  }
  return out;
}
