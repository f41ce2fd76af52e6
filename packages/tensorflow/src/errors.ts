/** Raised when native TensorFlow cannot be loaded, or when something other than it would run. */
export class NativeTensorFlowError extends Error {
  override readonly name = 'NativeTensorFlowError';
  readonly code = 'FEATHERSTACK_NO_NATIVE_TENSORFLOW';
}

/** Raised for an option that does not validate; the message names the option and the value. */
export class TensorFlowOptionError extends Error {
  override readonly name = 'TensorFlowOptionError';
  readonly code = 'FEATHERSTACK_INVALID_OPTION';
}

/** A saved model's file that is missing, truncated or damaged; `path` names it. */
export class ModelFileError extends Error {
  override readonly name = 'ModelFileError';
  readonly code = 'FEATHERSTACK_MODEL_FILE';
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`model file ${path} ${reason}`);
  }
}
