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
