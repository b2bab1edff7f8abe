/** State dicts: named tensors, read from and written to files Python's torch.save / torch.load understand. */
import { native, NativeTensorMap } from '../native';
import { Tensor } from '../tensor';
import { invalid, withCallerStack } from '../errors';
import { writeFileAtomic } from '../atomic-file';
import { readRegularFile } from '../user-file';

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
  const bytes = await readRegularFile(path);
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

/** `keys`, or the first `shown` of them and how many more. */
function someKeys(keys: readonly string[], shown = 4): string {
  return keys.length <= shown ? keys.join(', ') : `${keys.slice(0, shown).join(', ')} and ${keys.length - shown} more`;
}

/** The prefix that `longer` keys carry over `shorter` ones (e.g. 'encoder.'), when one prefix explains most of them. */
function commonExtraPrefix(longer: readonly string[], shorter: readonly string[]): string | undefined {
  const short = new Set(shorter);
  const counts = new Map<string, number>();
  for (const key of longer) {
    for (let i = key.indexOf('.'); i > 0; i = key.indexOf('.', i + 1)) {
      if (short.has(key.slice(i + 1))) counts.set(key.slice(0, i + 1), (counts.get(key.slice(0, i + 1)) ?? 0) + 1);
    }
  }
  const [prefix, count] = [...counts].sort((a, b) => b[1] - a[1])[0] ?? [];
  return prefix !== undefined && count! >= Math.min(longer.length, shorter.length) / 2 ? prefix : undefined;
}

/**
 * @internal A short account of a state dict that does not fit a model: how many keys are missing and unexpected
 * (a few of each), and the likely cause when one key prefix explains the difference.
 */
export function describeKeyMismatch(missing: readonly string[], unexpected: readonly string[]): string {
  const parts: string[] = [];
  if (missing.length) parts.push(`${missing.length} missing key(s) (${someKeys(missing)})`);
  if (unexpected.length) parts.push(`${unexpected.length} unexpected key(s) (${someKeys(unexpected)})`);
  let hint = '';
  const extra = commonExtraPrefix(unexpected, missing);
  const lacking = commonExtraPrefix(missing, unexpected);
  if (extra === 'module.') {
    hint = " The file's keys start with 'module.' (a DataParallel checkpoint): strip that prefix.";
  } else if (extra === 'encoder.') {
    hint = " The file's keys start with 'encoder.': it holds a whole SimCLR model (encoder + head), not an encoder. " +
      'Write the encoder alone with `simclr export --checkpoint <run>/last.ckpt --out encoder.pt`, or load it into a SimCLRModel.';
  } else if (extra) {
    hint = ` The file's keys carry the prefix '${extra}' that this model's keys lack: strip it.`;
  } else if (lacking === 'encoder.') {
    hint = " This model's keys start with 'encoder.' (a SimCLRModel) and the file holds a bare encoder (torchvision keys): " +
      'pass it as weights (SimCLRModel.create({ weights }), --weights), which maps the keys.';
  } else if (lacking) {
    hint = ` This model's keys carry the prefix '${lacking}' that the file's keys lack.`;
  }
  return `${parts.join(' and ')}.${hint}`;
}
