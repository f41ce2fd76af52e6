/** The optimizers every trainer takes (base, head), by name: one list, so a new one is added once. */
export const OPTIMIZERS = ['adam', 'sgd', 'momentum', 'rmsprop'] as const;
export type OptimizerKind = (typeof OPTIMIZERS)[number];
/** Momentum's coefficient for 'momentum' (Keras's SGD(momentum=0.9) convention). */
export const MOMENTUM = 0.9;
/** The list as an option's error message gives it. */
export const OPTIMIZER_CHOICES = `${OPTIMIZERS.slice(0, -1)
  .map((o) => `'${o}'`)
  .join(', ')} or '${OPTIMIZERS.at(-1)}'`;
