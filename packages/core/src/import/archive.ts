/**
 * A Keras 3 `.keras` archive: a zip of config.json (the model), model.weights.h5 (its weights) and
 * metadata.json (the Keras version). Read whole into memory with fflate; entry sizes are checked
 * against the central directory's before anything is inflated.
 */
import { readFile } from 'node:fs/promises';
import { ModelFileError } from '@featherstack/tensorflow';
import { unzipSync } from 'fflate';
import { isObject, type JsonObject, own } from './json.js';

/** The parts of a `.keras` archive the importer reads. @internal */
export interface KerasArchive {
  config: JsonObject;
  /** metadata.json, when present: `{keras_version, date_saved}`. */
  metadata: JsonObject | undefined;
  weights: Uint8Array | undefined;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** A config or metadata JSON larger than this is not one Keras wrote. */
const MAX_JSON_BYTES = 64 * 2 ** 20;
/** The largest weights file read into memory (a Node buffer's limit). */
const MAX_WEIGHTS_BYTES = 2 ** 32 - 1;
const LIMITS: Record<string, number> = { 'config.json': MAX_JSON_BYTES, 'metadata.json': MAX_JSON_BYTES, 'model.weights.h5': MAX_WEIGHTS_BYTES };

/** Does `head` start a zip archive? @internal */
export function isZip(head: Uint8Array): boolean {
  return ZIP_MAGIC.every((b, i) => head[i] === b);
}

function parseJson(file: string, entry: string, bytes: Uint8Array): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ModelFileError(file, `holds a ${entry} that is not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(value)) throw new ModelFileError(file, `holds a ${entry} that is not a JSON object`);
  return value;
}

/**
 * Reads a `.keras` archive; refuses a file that is not a zip, is truncated, or lacks config.json.
 *
 * @example
 * const { config, weights } = await readKerasArchive('model.keras');
 * @internal
 */
export async function readKerasArchive(file: string): Promise<KerasArchive> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new ModelFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  if (!isZip(bytes)) throw new ModelFileError(file, 'is not a zip archive, which a .keras file is (it does not start with PK\\x03\\x04)');
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (entry) => {
        const limit = own(LIMITS, entry.name);
        if (limit !== undefined && entry.originalSize > limit) {
          throw new ModelFileError(file, `holds a ${entry.name} of ${entry.originalSize} bytes, more than the ${limit} a Keras model has`);
        }
        return limit !== undefined;
      },
    });
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(file, `is a truncated or damaged zip archive (${(error as Error).message})`);
  }
  const config = entries['config.json'];
  if (config === undefined) throw new ModelFileError(file, 'is a zip archive without config.json, so not a .keras model');
  const metadata = entries['metadata.json'];
  return {
    config: parseJson(file, 'config.json', config),
    metadata: metadata === undefined ? undefined : parseJson(file, 'metadata.json', metadata),
    weights: entries['model.weights.h5'],
  };
}
