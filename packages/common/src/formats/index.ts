/**
 * The contract of every file featherstack writes and reads back, owned here so that writer and
 * reader import one definition: feature files, the stacked model's metadata, the pixel cache's
 * metadata key, and the image settings they record.
 */
export {
  FEATURE_COLUMNS,
  FEATURE_FORMAT,
  FEATURE_LAYER,
  FEATURE_METADATA,
  type FeatureFileInfo,
  type FeatureSchema,
  featureRecordBatch,
  featureSchema,
  readFeatureInfo,
  readFeatureSchema,
  isShardFileName,
  readShardInfo,
  SHARD_METADATA,
  type ShardKind,
  shardFileName,
  type ShardFile,
  type ShardInfo,
  shardSetProblem,
} from './features.js';
export { CHANNELS, COLOR_MODES, type ColorMode, INTERPOLATION_CHOICES, INTERPOLATIONS, type Interpolation, pixelBatch } from './image.js';
export { parseStackedMetadata, STACKED_FORMAT, STACKED_METADATA_FILE, type StackedMetadata } from './stacked.js';

/** Schema metadata key of a pixel cache (JSON: the images and settings it was built for). */
export const PIXEL_CACHE_METADATA = 'featherstack.pixel_cache';
