/**
 * @featherstack/common — what the other packages share: the formats' contract, Arrow file I/O,
 * atomic writes, option validation, the seeded RNG and the linear algebra.
 */
export { ArrowFileWriter, arrowBytesProblem, arrowFileProblem, arrowFramingProblem, listArrowFiles } from './arrow.js';
export { recoverDirectory, writeDirectoryAtomic, writeFileAtomic } from './files.js';
export * from './formats/index.js';
export { Covariance, symmetricEigen } from './linalg.js';
export { CounterRng, epochOrder, hashKeys, Stream } from './rng.js';
export {
  BestEpoch,
  type ClassWeight,
  classWeights,
  CONTROL_KEYS,
  controlsOf,
  CsvLog,
  DEFAULT_SEED,
  type EpochScores,
  LearningRates,
  type Monitor,
  MONITORS,
  type Plateau,
  type ResolvedControls,
  resolveControls,
  type Schedule,
  scoreOf,
  type TrainingControls,
  watchedValidation,
} from './training.js';
export { describe, invalidOption, is, OptionError, positiveInt } from './validate.js';
