/** Argument checks at the TS edge, one wording for every message (as sharp does). */

function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} of type ${typeof value}`;
  if (typeof value === 'string') return `'${value.length > 40 ? value.slice(0, 40) + '…' : value}' of type string`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return `${typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value}`;
}

/** A TypeError or RangeError saying what was expected for `name` and what came. */
export function invalid(expected: string, name: string, value: unknown, kind: 'type' | 'range' = 'type'): Error {
  const message = `Expected ${expected} for ${name} but received ${describe(value)}`;
  return kind === 'type' ? new TypeError(message) : new RangeError(message);
}

/** Throws unless every key of the options object `value` is one of `allowed` (a misspelt option is not ignored). */
export function checkKnownKeys(value: object, name: string, allowed: readonly string[]): void {
  const unknown = Object.keys(value).find((key) => !allowed.includes(key));
  if (unknown !== undefined) throw invalid(`one of the keys ${allowed.join(', ')}`, name, unknown);
}

export function checkInteger(value: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number') throw invalid('an integer', name, value);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = min > -Infinity && max < Infinity ? ` between ${min} and ${max}` : min > -Infinity ? ` >= ${min}` : '';
    throw invalid(`an integer${range}`, name, value, 'range');
  }
  return value;
}

export function checkNumber(value: unknown, name: string, min = -Infinity, max = Infinity, exclusiveMin = false): number {
  if (typeof value !== 'number') throw invalid('a number', name, value);
  if (!Number.isFinite(value) || value < min || value > max || (exclusiveMin && value === min)) {
    const lower = min > -Infinity ? `${exclusiveMin ? '>' : '>='} ${min}` : '';
    const upper = max < Infinity ? `<= ${max}` : '';
    throw invalid(`a finite number${lower || upper ? ' ' + [lower, upper].filter(Boolean).join(' and ') : ''}`, name, value, 'range');
  }
  return value;
}

export function checkOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string') throw invalid(`one of ${allowed.join(', ')}`, name, value);
  if (!allowed.includes(value as T)) throw invalid(`one of ${allowed.join(', ')}`, name, value, 'range');
  return value as T;
}

/** Re-throws a native rejection so its stack shows the caller's await, not an empty native frame. */
export async function withCallerStack<T>(promise: Promise<T>): Promise<T> {
  const site = new Error();
  try {
    return await promise;
  } catch (err) {
    if (err instanceof Error && site.stack) err.stack = `${err.name}: ${err.message}\n${site.stack.split('\n').slice(2).join('\n')}`;
    throw err;
  }
}

/** Options objects an edge has checked whole (a validated run config, and what the run layer makes of it). */
const checkedOptions = new WeakSet<object>();

/**
 * Freezes `options` and records that every setting in it was checked at the edge that made it, so that the layers it
 * is handed down to (Trainer, train step, optimiser) do not check the same values again.
 */
export function markChecked<T extends object>(options: T): Readonly<T> {
  checkedOptions.add(Object.freeze(options));
  return options;
}

/** Whether `options` was made by an edge that checked it ({@link markChecked}). */
export function wasChecked(options: object): boolean {
  return checkedOptions.has(options);
}
