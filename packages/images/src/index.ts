/**
 * @featherstack/images — a parallel, deterministic image input pipeline for Node.js: Keras's
 * ImageDataGenerator semantics on a worker pool that writes into shared Arrow buffers.
 *
 * The data path, folder by folder: sources/ (files: directory listing, manifests) → decoders/ +
 * load.ts (Keras's load_img) → transforms/ + augment.ts → pool/ (decode workers) → batch/ (the
 * shared slot and the batch viewing it) → flow/ (options, order, one epoch at a time, fit()).
 */
// First: sizes libuv's thread pool before anything can start it.
export { DEFAULT_UV_THREADPOOL_SIZE } from './pool/threads.js';
export { AUGMENT_KEYS, type AugmentOptions } from './augment.js';
export { FILL_MODES } from './transforms/warp.js';
export { PREPROCESS_MODES, type PreprocessMode, preprocessInput } from './transforms/preprocess-input.js';
export { imageBatchSchema, imageRecordBatch } from './batch/arrow.js';
export type { ClassMode, ImageBatch } from './batch/batch.js';
export {
  type CacheEncoding,
  type CacheFormat,
  type CacheKey,
  cacheFormatName,
  isCacheFormat,
  openPixelCache,
  parseCacheFormat,
  type PixelCacheIndex,
} from './cache.js';
export { DatasetError, ImageDecodeError, ImageOptionError, PoolClosedError, WorkerCrashError } from './errors.js';
export {
  type ArrayInput,
  flowFromArray,
  flowFromData,
  flowFromDirectory,
  flowFromFiles,
  flowFromListing,
  flowFromManifest,
  siblingFlow,
  type SiblingFlowOptions,
  flowFromPack,
  flowFromTar,
  type PackFlowOptions,
  type TarFlowOptions,
  pixelCacheBudget,
  pixelCacheBytes,
} from './flow/factories.js';
export { type CachePlan, type FlowState, ImageFlow } from './flow/flow.js';
export { isPack, type PackEncoding, type PackManifest, type PackShardInfo, readPackIndex } from './pack/format.js';
export { readPackImages } from './pack/read.js';
export {
  finishPack,
  inspectPackShard,
  type PackOptions,
  type PackResult,
  type PackRow,
  packDataset,
  packLayout,
  packShard,
  preparePackDir,
} from './pack/write.js';
export { shardFileName as packShardFileName } from './pack/format.js';
export { type BaseFlowOptions, type FileFlowOptions, type FlowOptions, ON_ERROR_MODES, type OnError, type SkippedFile } from './flow/options.js';
export { type JpegDecoderInfo, jpegDecoder } from './decoders/jpeg.js';
export { type LoadedImage, type LoadImageOptions, loadImage } from './load.js';
export { createImagePool, ImagePool } from './pool/pool.js';
export type { PixelType } from './image-spec.js';
export { COLOR_MODES, type ColorMode, type Interpolation } from '@featherstack/common';
export { codePointCompare, KERAS_EXTENSIONS, listClassFiles, listDirectory, type Manifest } from './sources/directory.js';
export { type ManifestClassMode, type ManifestOptions, readManifest, type TableManifest } from './sources/manifest.js';
export { type DatasetOptions, type TfLike, toTfDataset } from './tfdata.js';
