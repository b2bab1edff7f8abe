/**
 * Settings tables: each layer that owns settings (the train step, the Trainer, a run) writes them once, with type,
 * default, range or choices and help; the run's table (run/config.ts) is made of the lower layers' entries plus its
 * own, and the CLI's flags come from it. One checker reads any table, with errors.ts's one wording.
 */
import { checkInteger, checkNumber, checkOneOf, invalid } from './errors';

/** One setting. Without a `default` it is optional (undefined: not set). */
export type Setting =
  | { kind: 'int'; min: number; max?: number; default?: number; help: string }
  | { kind: 'number'; min: number; max?: number; exclusiveMin?: boolean; default?: number; help: string }
  | { kind: 'string'; default?: string; help: string; format?: { pattern: RegExp; expected: string } }
  | { kind: 'bool'; default?: boolean; help: string }
  | { kind: 'enum'; choices: readonly string[]; default?: string; help: string };

/** The TypeScript type of a setting's values. */
export type ValueOf<S> = S extends { kind: 'int' | 'number' } ? number
  : S extends { kind: 'bool' } ? boolean
  : S extends { choices: readonly (infer C)[] } ? C
  : string;

/** Checks `value` against the setting `name`'s entry; returns it. */
export function checkSetting<S extends Setting>(setting: S, name: string, value: unknown): ValueOf<S> {
  const s: Setting = setting;
  switch (s.kind) {
    case 'int':
      return checkInteger(value, name, s.min, s.max) as ValueOf<S>;
    case 'number':
      return checkNumber(value, name, s.min, s.max, s.exclusiveMin) as ValueOf<S>;
    case 'bool':
      if (typeof value !== 'boolean') throw invalid('a boolean', name, value);
      return value as ValueOf<S>;
    case 'enum':
      return checkOneOf(value, name, s.choices) as ValueOf<S>;
    case 'string':
      if (typeof value !== 'string' || value === '') throw invalid('a non-empty string', name, value);
      if (s.format && !s.format.pattern.test(value)) throw invalid(s.format.expected, name, value, 'range');
      return value as ValueOf<S>;
  }
}

/** Checks the settings `names` of `options` against `table` (an optional one may be undefined). */
export function checkSettings(table: Record<string, Setting>, options: Record<string, unknown>, names: readonly string[] = Object.keys(table)): void {
  for (const name of names) {
    const setting = table[name];
    if (options[name] === undefined && setting.default === undefined) continue;
    checkSetting(setting, name, options[name]);
  }
}

/** The default of every entry of `table` that has one, frozen. */
export function defaultsOf<T extends Record<string, Setting>>(table: T): Readonly<{ [K in keyof T as T[K] extends { default: unknown } ? K : never]: ValueOf<T[K]> }> {
  return Object.freeze(Object.fromEntries(Object.entries(table).flatMap(([name, s]) => (s.default === undefined ? [] : [[name, s.default]])))) as never;
}
