/**
 * The feature file: what core's extraction writes and head reads back. One Arrow IPC file (or a
 * directory of shard files) with one row per image:
 *
 * | column | type |
 * | --- | --- |
 * | `path` | utf8, relative to the dataset root |
 * | `label` | int32, the class index (-1 when unlabelled) |
 * | `features` | FixedSizeList<float32>[dimension] |
 *
 * and string metadata under the keys of FEATURE_METADATA (JSON values where noted).
 */
import { DataType, Field, FixedSizeList, Float32, Int32, makeData, RecordBatch, Schema, Struct, Utf8, vectorFromArray } from 'apache-arrow';

export const FEATURE_COLUMNS = { path: 'path', label: 'label', features: 'features' } as const;

/**
 * The feature file's format version (FEATURE_METADATA.format): raised when a reader of the old
 * version would misread a new file. A file without it (an older featherstack, another tool) is
 * version 1; a newer version is refused by name rather than half-read.
 */
export const FEATURE_FORMAT = 1;

export const FEATURE_METADATA = {
  /** The format version, FEATURE_FORMAT when written. */
  format: 'featherstack.format',
  /** JSON string[]: class names by label index. */
  classNames: 'featherstack.class_names',
  /** JSON Record<string, number>. */
  classIndices: 'featherstack.class_indices',
  /** The base layer the features were read from. */
  featureLayer: 'featherstack.feature_layer',
  /** 'avg', 'max' or 'none': the global pooling applied to the feature layer's output. */
  pooling: 'featherstack.pooling',
  /** Keras's preprocess_input mode the images went through ('none', 'tf', 'caffe', 'torch'). */
  preprocess: 'featherstack.preprocess',
  /** JSON: the flow's image settings (size, channels, colour mode, interpolation, …). */
  image: 'featherstack.image',
  /** JSON: the flow's augmentation (extraction runs without random transforms). */
  augment: 'featherstack.augment',
  /** ISO time of writing; the one key that may differ between two runs of the same extraction. */
  created: 'featherstack.created',
  /** The writing package's version. */
  version: 'featherstack.version',
  /** sha256 over the base model's weight shapes and values. */
  baseModelSha256: 'featherstack.base_model_sha256',
  /** JSON { l2, pca: { components, from } | null }: the transform applied to each row. */
  transform: 'featherstack.transform',
  /** JSON [steps, features per step]: rows are sequences, for a recurrent head. */
  sequence: 'featherstack.sequence',
} as const;

/** The name of the base layer whose output is the feature vector, unless a model says otherwise. */
export const FEATURE_LAYER = 'features';

/** Schema of a feature file with `dimension` features per row. */
export function featureSchema(dimension: number, metadata: Map<string, string>): Schema {
  return new Schema(
    [
      new Field(FEATURE_COLUMNS.path, new Utf8(), false),
      new Field(FEATURE_COLUMNS.label, new Int32(), false),
      new Field(FEATURE_COLUMNS.features, new FixedSizeList(dimension, new Field('value', new Float32(), false)), false),
    ],
    metadata,
  );
}

/** A feature RecordBatch over `features` (row-major, rows × dimension) without copying it. */
export function featureRecordBatch(schema: Schema, paths: string[], labels: Int32Array, features: Float32Array): RecordBatch {
  const length = labels.length;
  const listType = schema.fields[2]!.type as FixedSizeList<Float32>;
  const children = [
    vectorFromArray(paths, new Utf8()).data[0]!,
    makeData({ type: new Int32(), length, nullCount: 0, data: labels }),
    makeData({ type: listType, length, nullCount: 0, child: makeData({ type: new Float32(), length: features.length, nullCount: 0, data: features }) }),
  ];
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }));
}

/** What a reader needs from a feature file's metadata. */
export interface FeatureFileInfo {
  classNames: string[];
  /** [steps, features per step] when rows are sequences. */
  sequence: [number, number] | null;
}

/** Reads FEATURE_METADATA's classNames and sequence; returns the problem as a string when they do not parse. */
export function readFeatureInfo(metadata: Map<string, string>): FeatureFileInfo | string {
  const format = metadata.get(FEATURE_METADATA.format) ?? '1';
  if (!/^[1-9]\d*$/.test(format)) return `has metadata ${FEATURE_METADATA.format} ${JSON.stringify(format)}, not a format version`;
  if (Number(format) > FEATURE_FORMAT)
    return `is feature format ${format}, written by a newer featherstack; this one reads format ${FEATURE_FORMAT} (upgrade featherstack, or re-extract)`;
  let classNames: unknown = [];
  let sequence: unknown = null;
  try {
    classNames = JSON.parse(metadata.get(FEATURE_METADATA.classNames) ?? '[]');
    sequence = JSON.parse(metadata.get(FEATURE_METADATA.sequence) ?? 'null');
  } catch (error) {
    return `has metadata that is not JSON (${(error as Error).message})`;
  }
  if (!Array.isArray(classNames) || classNames.some((c) => typeof c !== 'string'))
    return `has metadata ${FEATURE_METADATA.classNames} that is not a list of names`;
  if (sequence !== null && !(Array.isArray(sequence) && sequence.length === 2 && sequence.every((v) => Number.isInteger(v) && v > 0))) {
    return `has metadata ${FEATURE_METADATA.sequence} that is not [steps, features per step]`;
  }
  return { classNames, sequence: sequence as [number, number] | null };
}

/** A feature file's schema as every reader of the format needs it, checked once (readFeatureSchema). */
export interface FeatureSchema extends FeatureFileInfo {
  dimension: number;
  /** Whether rows name their image (the `path` column). */
  hasPaths: boolean;
  /** Which part of a distributed extraction the file holds; null when it is not a shard. */
  shard: ShardInfo | null;
  /** FEATURE_METADATA.baseModelSha256, when recorded. */
  baseModel: string | undefined;
}

/**
 * The one check of a feature file's schema — its columns and their types, its format version and
 * metadata, its shard description — shared by the head's readers, the coordinator and `inspect`:
 * the schema's description, or what is wrong with it (a phrase to follow the file's name).
 */
export function readFeatureSchema(schema: Schema): FeatureSchema | string {
  const field = (name: string) => schema.fields.find((f) => f.name === name);
  const columns = `(columns: ${schema.fields.map((f) => f.name).join(', ')})`;
  const features = field(FEATURE_COLUMNS.features);
  const label = field(FEATURE_COLUMNS.label);
  const path = field(FEATURE_COLUMNS.path);
  if (!features) return `has no '${FEATURE_COLUMNS.features}' column ${columns}`;
  if (!label) return `has no '${FEATURE_COLUMNS.label}' column ${columns}`;
  const type = features.type;
  if (!DataType.isFixedSizeList(type) || !DataType.isFloat(type.children[0]!.type))
    return `column '${FEATURE_COLUMNS.features}' must be FixedSizeList<Float32>, found ${String(type)}`;
  if (!DataType.isInt(label.type)) return `column '${FEATURE_COLUMNS.label}' must be an integer column, found ${String(label.type)}`;
  if (path && !DataType.isUtf8(path.type)) return `column '${FEATURE_COLUMNS.path}' must be Utf8, found ${String(path.type)}`;
  const dimension = type.listSize;
  if (dimension < 1) return 'has 0-dimensional features: there is nothing to train a head on';
  const info = readFeatureInfo(schema.metadata);
  if (typeof info === 'string') return info;
  const shard = readShardInfo(schema.metadata);
  if (typeof shard === 'string') return shard;
  return { ...info, dimension, hasPaths: path !== undefined, shard, baseModel: schema.metadata.get(FEATURE_METADATA.baseModelSha256) };
}

/** Schema metadata key of a shard file: JSON ShardInfo. */
export const SHARD_METADATA = 'featherstack.shard';

/** Which part of one distributed extraction a shard file holds: rows [start, end) of the listing. */
export interface ShardInfo {
  /** The extraction (job set) it belongs to. */
  set: string;
  index: number;
  count: number;
  start: number;
  end: number;
}

/** The shard info of a file's metadata: null when it is not a shard, a string when it does not parse. */
export function readShardInfo(metadata: Map<string, string>): ShardInfo | null | string {
  const text = metadata.get(SHARD_METADATA);
  if (text === undefined) return null;
  let v: Partial<ShardInfo>;
  try {
    v = JSON.parse(text);
  } catch {
    return `has metadata ${SHARD_METADATA} that is not JSON`;
  }
  const ints = [v.index, v.count, v.start, v.end].every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
  if (typeof v.set !== 'string' || !ints || v.index! >= v.count! || v.end! < v.start!) return `has metadata ${SHARD_METADATA} that is not a shard description`;
  return v as ShardInfo;
}

/** One file of a set, as shardSetProblem checks it. */
export interface ShardFile {
  path: string;
  shard: ShardInfo | null;
  /** FEATURE_METADATA.baseModelSha256. */
  model: string | undefined;
  /** Rows, when known (a streamed reader knows only the footers). */
  rows?: number;
}

/**
 * What is wrong with a set of feature files that are shards of one extraction, or null when it is
 * complete: every shard of one set exactly once, one base model, rows [0, n) each exactly once.
 * Files that are not shards (no SHARD_METADATA) are a set only on their own.
 */
export function shardSetProblem(files: ShardFile[]): string | null {
  const shards = files.filter((f) => f.shard !== null);
  if (shards.length === 0) return null;
  if (shards.length !== files.length)
    return `${files.find((f) => f.shard === null)!.path} is not a shard, but ${shards[0]!.path} is: a shard set holds shards only`;
  const first = shards[0]!;
  const byIndex = new Map<number, ShardFile>();
  for (const f of shards) {
    const s = f.shard!;
    if (s.set !== first.shard!.set) return `${f.path} belongs to extraction ${s.set}, not ${first.shard!.set} (${first.path})`;
    if (s.count !== first.shard!.count) return `${f.path} says the set has ${s.count} shards, ${first.path} says ${first.shard!.count}`;
    if (f.model !== first.model) return `${f.path} was extracted by base model ${f.model?.slice(0, 12)}…, ${first.path} by ${first.model?.slice(0, 12)}…`;
    if (byIndex.has(s.index)) return `${f.path} and ${byIndex.get(s.index)!.path} are both shard ${s.index}`;
    if (f.rows !== undefined && f.rows !== s.end - s.start) return `${f.path} holds ${f.rows} rows, but shard ${s.index} is rows ${s.start}–${s.end}`;
    byIndex.set(s.index, f);
  }
  const missing = Array.from({ length: first.shard!.count }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length > 0)
    return `the shard set of ${first.path} is incomplete: shard${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''} of ${first.shard!.count} missing`;
  let next = 0;
  for (let i = 0; i < first.shard!.count; i++) {
    const s = byIndex.get(i)!.shard!;
    if (s.start !== next) return `shard ${i} (${byIndex.get(i)!.path}) starts at row ${s.start}, not ${next}: rows are missing or doubled`;
    next = s.end;
  }
  return null;
}

/** The two kinds of shard file a distributed job writes: feature shards and pixel-cache shards. */
export type ShardKind = 'features' | 'pixels';

const SHARD_PREFIX: Record<ShardKind, string> = { features: 'shard', pixels: 'pixels' };

/**
 * The one owner of shard file names: `shard-<index>.arrow` (features) or `pixels-<index>.arrow`
 * (a pixel-cache shard), zero-padded so that names sort in shard order.
 */
export function shardFileName(index: number, kind: ShardKind = 'features'): string {
  return `${SHARD_PREFIX[kind]}-${String(index).padStart(6, '0')}.arrow`;
}

/** Whether `name` is a shard file name of `kind` (as shardFileName writes them). */
export function isShardFileName(name: string, kind: ShardKind = 'features'): boolean {
  return new RegExp(`^${SHARD_PREFIX[kind]}-\\d+\\.arrow$`).test(name);
}
