/**
 * Typed access to the JSON of a model file. A model file can come from anywhere, so every value is
 * checked where it is read, and a wrong one is refused naming the file, the layer and the key.
 */
import { type ImportSite, ModelImportError } from './errors.js';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/**
 * `record[key]` for the record's own keys only: a file naming a class `constructor` or `toString`
 * must not reach Object.prototype.
 * @internal
 */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** @internal */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Throws the importer's error for a value that is not what the format says. @internal */
export function badValue(site: ImportSite, what: string, expected: string, received: unknown): ModelImportError {
  return new ModelImportError(site, `${what} must be ${expected}, received ${show(received)}`);
}

/** @internal */
export function asObject(site: ImportSite, what: string, value: unknown): JsonObject {
  if (!isObject(value)) throw badValue(site, what, 'an object', value);
  return value;
}

/** @internal */
export function asArray(site: ImportSite, what: string, value: unknown): Json[] {
  if (!Array.isArray(value)) throw badValue(site, what, 'a list', value);
  return value;
}

/** @internal */
export function asString(site: ImportSite, what: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw badValue(site, what, 'a non-empty string', value);
  return value;
}

/** A finite number, or `fallback` when the key is absent or null. @internal */
export function asNumber(site: ImportSite, what: string, value: unknown, fallback?: number): number {
  if ((value === undefined || value === null) && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw badValue(site, what, 'a finite number', value);
  return value;
}

/** A non-negative integer, e.g. a node or tensor index. @internal */
export function asIndex(site: ImportSite, what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw badValue(site, what, 'a non-negative integer', value);
  return value;
}

/** A boolean, or `fallback` when absent or null. @internal */
export function asBoolean(site: ImportSite, what: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw badValue(site, what, 'true or false', value);
  return value;
}

/** A shape: a list of positive integers, null for an unknown dimension. @internal */
export function asShape(site: ImportSite, what: string, value: unknown): (number | null)[] {
  const list = asArray(site, what, value);
  return list.map((d) => {
    if (d === null) return null;
    if (typeof d !== 'number' || !Number.isInteger(d) || d < -1 || d === 0) throw badValue(site, what, 'a list of positive integers and nulls', value);
    return d;
  });
}

/**
 * An integer or a list of `n` integers (Keras writes `kernel_size: 3` and `[3, 3]`); always a list.
 * @internal
 */
export function asTuple(site: ImportSite, what: string, value: unknown, n: number): number[] {
  const list = typeof value === 'number' ? Array<unknown>(n).fill(value) : asArray(site, what, value);
  if (list.length !== n || !list.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    throw badValue(site, what, `an integer or a list of ${n} integers`, value);
  }
  return list as number[];
}
