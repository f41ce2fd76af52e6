/**
 * @featherstack/images — a parallel, deterministic image input pipeline for Node.js: Keras's
 * ImageDataGenerator semantics on a worker pool that writes into shared Arrow buffers.
 */
// First: sizes libuv's thread pool before anything can start it.
export { DEFAULT_UV_THREADPOOL_SIZE, type ThreadPlan, threadPlan } from './threads.js';
export { ArrowFileWriter, imageBatchSchema, imageRecordBatch } from './arrow.js';
export { AUGMENT_KEYS, type AugmentOptions } from './augment.js';
export { type CacheKey, openPixelCache, type PixelCacheIndex } from './cache.js';
export { symmetricEigen } from './zca.js';
export { DatasetError, ImageDecodeError, ImageOptionError, PoolClosedError, WorkerCrashError } from './errors.js';
export {
  type ArrayInput,
  type BaseFlowOptions,
  type ClassMode,
  createImagePool,
  type FileFlowOptions,
  type FlowOptions,
  flowFromArray,
  flowFromDirectory,
  flowFromFiles,
  flowFromManifest,
  type ImageBatch,
  ImageFlow,
  ImagePool,
  type SkippedFile,
} from './flow.js';
export { type LoadedImage, type LoadImageOptions, loadImage } from './load.js';
export type { ColorMode, Interpolation, PixelType } from './protocol.js';
export { codePointCompare, KERAS_EXTENSIONS, listClassFiles, listDirectory, type Manifest } from './sources/directory.js';
export { type ManifestClassMode, type ManifestOptions, readManifest, type TableManifest } from './sources/manifest.js';
export { type DatasetOptions, type TfLike, toTfDataset } from './tfdata.js';
