/** @featherstack/head — trains a classifier head from Arrow feature files. */
export { FeatureFileError, HeadOptionError } from './errors.js';
export { type FeatureSet, readFeatureFile, readFeatureFiles } from './features.js';
export { type HeadEpochProgress, type HeadOptions, type HeadResult, trainHead } from './train.js';
export { type ClassMetrics, type Evaluation, evaluateHead, metricsFromProbabilities } from './evaluate.js';
export { loadStacked, saveStacked, stackModels } from './stack.js';
export { type FeatureStream, openFeatureStream } from './stream.js';
