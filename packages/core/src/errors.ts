/** Errors of @featherstack/core, with stable names and codes (see images/errors.ts for why). */
import { invalidOption as commonInvalidOption, OptionError } from '@featherstack/common';

export class CoreOptionError extends OptionError {
  override readonly name = 'CoreOptionError';
}

/** Builds the error for an option that does not validate. @internal */
export function invalidOption(name: string, expected: string, received: unknown): CoreOptionError {
  return commonInvalidOption(name, expected, received, CoreOptionError);
}

/**
 * Base training produced a non-finite loss: NaN or ±Infinity weights follow from it, and every
 * feature extracted after would be meaningless. Thrown before that epoch is checkpointed.
 */
export class TrainingDivergedError extends Error {
  override readonly name = 'TrainingDivergedError';
}
