/** Errors of @featherstack/core, with stable names and codes (see images/errors.ts for why). */
export class CoreOptionError extends Error {
  override readonly name = 'CoreOptionError';
  readonly code = 'FEATHERSTACK_INVALID_OPTION';
}

/** Builds the error for an option that does not validate. @internal */
export function invalidOption(name: string, expected: string, received: unknown): CoreOptionError {
  return new CoreOptionError(`options.${name} must be ${expected}, received ${JSON.stringify(received)}`);
}
