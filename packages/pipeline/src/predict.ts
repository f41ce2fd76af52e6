/**
 * `featherstack predict`: images (files or directories) through a saved stacked model, with the
 * same loading as training (no augmentation), to class names and probabilities.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadStacked } from '@featherstack/head';
import { flowFromFiles, KERAS_EXTENSIONS, listClassFiles, type OnError } from '@featherstack/images';
import { loadTensorFlow } from '@featherstack/tensorflow';
import { modelPredictor, registerKerasExtensions } from '@featherstack/core';

export interface Prediction {
  path: string;
  /** The `top` most probable classes, most probable first; empty when the image could not be loaded. */
  classes: { className: string; probability: number }[];
  /** Why the image could not be loaded (onError: 'skip' only). */
  error?: string;
}

async function expand(input: string, out: string[]): Promise<void> {
  const path = resolve(input);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch {
    throw new Error(`predict: ${input} does not exist`);
  }
  if (info.isFile()) {
    out.push(path);
    return;
  }
  // A FIFO, socket or device would block a decode worker in open() or read() forever.
  if (!info.isDirectory()) throw new Error(`predict: ${input} is not an image file or a directory (${kind(info)}); predict reads regular files only`);
  // The library's walk: Keras's order, directory links followed, and a directory whose real path
  // was already visited skipped, so a link loop ends instead of recursing to ELOOP.
  out.push(...(await listClassFiles(path, KERAS_EXTENSIONS, true)));
}

function kind(info: Awaited<ReturnType<typeof stat>>): string {
  if (info.isFIFO()) return 'a named pipe';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Predicts the classes of `inputs` (image files, or directories searched recursively for images).
 *
 * @example
 * const [first] = await predict({ model: 'runs/latest/model', inputs: ['shoe.png'], top: 3 });
 */
export async function predict(options: { model: string; inputs: string[]; top?: number; workers?: number; onError?: OnError }): Promise<Prediction[]> {
  const files: string[] = [];
  for (const input of options.inputs) await expand(input, files);
  if (files.length === 0) throw new Error(`predict: no images in ${options.inputs.join(', ')}`);
  const tf = loadTensorFlow();
  // A stacked model over an imported base holds layers that featherstack registers with tfjs.
  registerKerasExtensions(tf);
  const { model, metadata } = await loadStacked(tf, options.model);
  const [height, width] = metadata.inputShape;
  const flow = await flowFromFiles(files, {
    targetSize: [height, width],
    colorMode: metadata.colorMode,
    interpolation: metadata.interpolation,
    augment: { rescale: metadata.rescale, preprocess: metadata.preprocess ?? 'none' },
    batchSize: 64,
    onError: options.onError ?? 'raise',
    ...(options.workers !== undefined ? { workers: options.workers } : {}),
  });
  const top = Math.min(options.top ?? 3, metadata.classNames.length);
  // One entry per input file, in input order: a file that fails under 'skip' keeps its place with the reason.
  const results: Prediction[] = files.map((path) => ({ path, classes: [] }));
  const predictor = await modelPredictor(tf, model);
  try {
    for await (const batch of flow) {
      const values = await predictor.predict(batch.images as Float32Array, batch.size);
      const c = metadata.classNames.length;
      for (let i = 0; i < batch.size; i++) {
        const row = Array.from(values.subarray(i * c, (i + 1) * c), (p, k) => ({ className: metadata.classNames[k]!, probability: p }));
        row.sort((a, b) => b.probability - a.probability);
        results[batch.samples[i]!]!.classes = row.slice(0, top);
      }
    }
    const failed = new Map(flow.skippedFiles.map((f) => [f.path, f.reason]));
    for (const r of results) if (failed.has(r.path)) r.error = failed.get(r.path)!;
    // Skipping bad images is for the odd bad one: nothing loadable at all is a failure, not an empty result.
    if (failed.size === files.length) {
      const [path, reason] = failed.entries().next().value!;
      throw new Error(`predict: none of the ${files.length} image${files.length > 1 ? 's' : ''} could be loaded (the first, ${path}: ${reason})`);
    }
  } finally {
    await predictor.close();
    await flow.close();
    model.dispose();
  }
  return results;
}
