/**
 * The job queue's contract between coordinator and workers: one BullMQ job per shard, whose data
 * is everything a worker on another machine needs — the base model by path and sha256, the image
 * settings, the shard's rows of the listing and where the shard goes.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { ColorMode, PackEncoding, PreprocessMode } from '@featherstack/images';

/** The BullMQ queue every featherstack coordinator and worker uses (pass `queueName` to startWorker and extractDistributed for several; the CLI uses this one). */
export const QUEUE_NAME = 'featherstack-extract';

export interface ShardJob {
  /**
   * What the shard is: features (shard-<n>.arrow), decoded, resized pixels (pixels-<n>.arrow, a
   * sharded pixel cache), or one shard of a pack (shard-NNNNN.arrow: the images' encoded bytes).
   */
  kind: 'features' | 'pixels' | 'pack';
  /** The extraction this shard belongs to (a hash of its inputs: re-running the coordinator re-attaches). */
  set: string;
  /**
   * The base model (features only), and where it is cut (Keras's include_top=False, pooling=…):
   * featureLayer null for the model's default feature layer.
   */
  model: { path: string; sha256: string; featureLayer: string | null; pooling: 'avg' | 'max' | 'none' } | null;
  /** How features and pixels are decoded (null for a pack shard: it stores the encoded files). */
  image: {
    imageSize: [number, number];
    colorMode: ColorMode;
    rescale: number;
    /** Keras's preprocess_input mode applied in the decode workers (replaces the rescale when not 'none'). */
    preprocess: PreprocessMode;
    /** null: each worker sizes the batch from the model it loads (extractionBatchFor, its own replicas). */
    batchSize: number | null;
  } | null;
  /** A pack shard (null for the other kinds): how its images are stored, and each row's listing index. */
  pack: { encoding: PackEncoding; indices: number[] } | null;
  /** The shard's rows of the listing: root, class names, and each row's path and label. */
  root: string;
  classNames: string[];
  paths: string[];
  labels: number[];
  /** Where the shard's rows sit in the set: the listing's order, or a pack's stored order. */
  shard: { index: number; count: number; start: number; end: number };
  /** The shard directory, or the pack's (a path every worker sees). */
  output: string;
}

/** What a worker reports as a job's progress (also read by `queue status`). */
export interface ShardProgress {
  worker: string;
  rows: number;
  total: number;
}

/**
 * sha256 of a base model: a Keras file (`.keras`, `.h5`) as it is, a tfjs model.json with its
 * weight files in manifest order. Errors name the file and never quote its content (a forged
 * job's path must not turn the error into a way to read a file).
 */
export async function modelFileHash(model: string): Promise<string> {
  const hash = createHash('sha256');
  const text = await readFile(model);
  hash.update(text);
  if (!model.toLowerCase().endsWith('.json')) return hash.digest('hex');
  let manifest: { weightsManifest?: { paths?: unknown }[] };
  try {
    manifest = JSON.parse(text.toString('utf8'));
  } catch {
    throw new Error(`${model} is not a tfjs model.json (it is not JSON)`);
  }
  for (const group of manifest.weightsManifest ?? []) {
    for (const p of Array.isArray(group.paths) ? group.paths : []) {
      // Weight files lie beside model.json: a manifest cannot name a file elsewhere.
      if (typeof p !== 'string' || p.length === 0 || isAbsolute(p) || p.split(/[/\\]/).includes('..'))
        throw new Error(`${model}: weight file ${JSON.stringify(String(p).slice(0, 80))} is not a path beside it`);
      hash.update(await readFile(join(dirname(model), p)));
    }
  }
  return hash.digest('hex');
}
