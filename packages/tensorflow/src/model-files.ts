/**
 * Checks a tfjs layers model on disk before tfjs reads it: tfjs reports a truncated weights file
 * as a tensor-size mismatch naming neither the file nor the cause, and a truncated model.json as a
 * bare JSON position.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ModelFileError } from './errors.js';

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, int8: 1, uint16: 2, int16: 2 };

interface WeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string };
}

/**
 * Throws a ModelFileError naming the file when `modelJson` is unreadable or not a layers model,
 * or when a weights file it lists is missing or holds other than the bytes its manifest describes.
 */
export async function checkModelFiles(modelJson: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(modelJson, 'utf8');
  } catch (error) {
    throw new ModelFileError(modelJson, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let json: { modelTopology?: unknown; weightsManifest?: { paths: string[]; weights: WeightEntry[] }[] };
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ModelFileError(modelJson, `is not valid JSON, truncated or damaged (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new ModelFileError(modelJson, 'is not a tfjs layers model (no modelTopology or weightsManifest)');
  }
  for (const group of json.weightsManifest) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group.weights))
      throw new ModelFileError(modelJson, 'has a weightsManifest group without paths or weights');
    let expected = 0;
    for (const w of group.weights) {
      const bytes = DTYPE_BYTES[w.quantization?.dtype ?? w.dtype];
      if (bytes === undefined || !Array.isArray(w.shape)) return; // strings or unknown types: leave the check to tfjs
      expected += w.shape.reduce((a, b) => a * b, 1) * bytes;
    }
    let actual = 0;
    for (const p of group.paths) {
      const file = join(dirname(modelJson), p);
      try {
        actual += (await stat(file)).size;
      } catch {
        throw new ModelFileError(file, `is missing (listed by ${modelJson})`);
      }
    }
    if (actual !== expected) {
      const files = group.paths.map((p) => join(dirname(modelJson), p)).join(', ');
      throw new ModelFileError(
        files,
        `holds ${actual} bytes where ${modelJson} describes ${expected}: ${actual < expected ? 'truncated' : 'not the weights of this model'}`,
      );
    }
  }
}
