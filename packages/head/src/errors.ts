/** Errors of @featherstack/head, with stable names and codes. */
import { invalidOption as commonInvalidOption, OptionError } from '@featherstack/common';

export class FeatureFileError extends Error {
  override readonly name = 'FeatureFileError';
  readonly code = 'FEATHERSTACK_FEATURE_FILE';
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`feature file ${path}: ${reason}`);
  }
}

export class HeadOptionError extends OptionError {
  override readonly name = 'HeadOptionError';
}

/** @internal */
export function invalidOption(name: string, expected: string, received: unknown): HeadOptionError {
  return commonInvalidOption(name, expected, received, HeadOptionError);
}
