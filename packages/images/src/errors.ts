/**
 * Errors of @featherstack/images. Each has a stable `name` and `code`: errors cross worker threads
 * as structured clones, where `instanceof` does not survive, so callers test `code`.
 */
import { invalidOption as commonInvalidOption, OptionError } from '@featherstack/common';

export class ImageOptionError extends OptionError {
  override readonly name = 'ImageOptionError';
}

/** An image file that cannot be read or decoded; `path` names it. */
export class ImageDecodeError extends Error {
  override readonly name = 'ImageDecodeError';
  readonly code = 'FEATHERSTACK_IMAGE_DECODE';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`cannot load image ${path}: ${reason}`);
  }
}

/** A directory or manifest that does not describe a usable dataset. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  readonly code = 'FEATHERSTACK_DATASET';
}

/** The pool was closed or the iteration aborted while work was pending. */
export class PoolClosedError extends Error {
  override readonly name = 'PoolClosedError';
  readonly code = 'FEATHERSTACK_POOL_CLOSED';
}

/** A worker died twice on the same task (e.g. a native crash or out-of-memory inside libvips). */
export class WorkerCrashError extends Error {
  override readonly name = 'WorkerCrashError';
  readonly code = 'FEATHERSTACK_WORKER_CRASH';
  constructor(
    readonly files: string,
    firstReason: string,
    secondReason: string,
  ) {
    super(`a decode worker died twice while loading ${files} (first: ${firstReason}; retry: ${secondReason})`);
  }
}

/**
 * Builds the error for an option that does not validate, naming the option, what was expected and
 * what was received. @internal
 */
export function invalidOption(name: string, expected: string, received: unknown): ImageOptionError {
  return commonInvalidOption(name, expected, received, ImageOptionError);
}
