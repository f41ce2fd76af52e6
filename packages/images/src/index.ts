/**
 * @featherstack/images — a parallel, deterministic image input pipeline for Node.js: Keras's
 * ImageDataGenerator semantics on a worker pool that writes into shared Arrow buffers.
 */
export { imageBatchSchema, imageRecordBatch } from './arrow.js';
export type { AugmentOptions } from './augment.js';
export { DatasetError, ImageDecodeError, ImageOptionError, PoolClosedError } from './errors.js';
export { type ClassMode, createImagePool, type FlowOptions, flowFromDirectory, type ImageBatch, ImageFlow, ImagePool, type SkippedFile } from './flow.js';
export type { ColorMode, Interpolation } from './protocol.js';
export { codePointCompare, KERAS_EXTENSIONS, listDirectory, type Manifest } from './sources/directory.js';
