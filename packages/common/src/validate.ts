/**
 * The validation vocabulary every package checks its options with (after sharp's lib/is.js): small
 * predicates, and one way to say what was wrong — the option's name, what it must be, what it was.
 */

/** An option that does not validate. Packages subclass it for their own `name`; `code` is shared. */
export class OptionError extends Error {
  override readonly name: string = 'OptionError';
  readonly code = 'FEATHERSTACK_INVALID_OPTION';
}

/** A value as a message shows it: strings quoted, NaN and undefined as such, arrays and objects as JSON. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null) return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `[${value.map(describe).join(', ')}]`;
  try {
    return JSON.stringify(value);
  } catch {
    return typeof value;
  }
}

type OptionErrorClass = new (message: string) => Error;

/** `options.<name> must be <expected>, received <value>`, as an error of class `Kind`. */
export function invalidOption<E extends Error = OptionError>(name: string, expected: string, received: unknown, Kind?: new (message: string) => E): E {
  const message = `options.${name} must be ${expected}, received ${describe(received)}`;
  return Kind ? new Kind(message) : (new OptionError(message) as unknown as E);
}

export const is = {
  defined: (v: unknown): boolean => v !== undefined && v !== null,
  bool: (v: unknown): v is boolean => typeof v === 'boolean',
  string: (v: unknown): v is string => typeof v === 'string' && v.length > 0,
  number: (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v),
  integer: (v: unknown): v is number => Number.isSafeInteger(v),
  positiveInteger: (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1,
  nonNegativeInteger: (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0,
  inRange: (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && v >= lo && v <= hi,
  oneOf: <T>(v: unknown, values: readonly T[]): v is T => values.includes(v as T),
  object: (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v),
  pair: (v: unknown, item: (x: unknown) => boolean): v is [number, number] => Array.isArray(v) && v.length === 2 && v.every(item),
};

/** `value` when it is a positive integer, `fallback` when undefined; otherwise throws naming `name`. */
export function positiveInt(name: string, value: unknown, fallback: number, Kind: OptionErrorClass = OptionError): number {
  if (value === undefined) return fallback;
  if (!is.positiveInteger(value)) throw invalidOption(name, 'a positive integer', value, Kind);
  return value;
}
