/** Errors of @featherstack/head, with stable names and codes. */
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

export class HeadOptionError extends Error {
  override readonly name = 'HeadOptionError';
  readonly code = 'FEATHERSTACK_INVALID_OPTION';
}

/** @internal */
export function invalidOption(name: string, expected: string, received: unknown): HeadOptionError {
  return new HeadOptionError(`options.${name} must be ${expected}, received ${JSON.stringify(received)}`);
}
