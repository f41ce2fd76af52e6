/**
 * @featherstack/core — trains the base CNN on image flows and streams its features into Arrow IPC files.
 */
export { CoreOptionError, TrainingDivergedError } from './errors.js';
export {
  type ExtractOptions,
  type ExtractProgress,
  type ExtractResult,
  extractFeatures,
  type ExtractRunOptions,
  type FeatureExtraction,
  openExtraction,
  type FeatureTransform,
  fitPca,
  modelHash,
  type Pca,
} from './extract.js';
export { ENGINE_KINDS, type EngineKind, type EngineOptions } from './engines.js';
export { GraphCompileError, type Precision } from './graph/compile.js';
export { PRECISIONS } from './graph/context.js';
export {
  checkCut,
  defaultFeatureLayer,
  EXTRACTION_ACTIVATION_BUDGET,
  EXTRACTION_COSTS,
  extractionBatchFor,
  extractionWorkers,
  featureExtractor,
  multiplyAccumulates,
  POOLINGS,
  type Pooling,
  parseRecordedCut,
  recordCut,
  recordedCut,
  recordedPooling,
  resolveCut,
} from './cut.js';
export { type BaseModelOptions, createBaseModel, loadBaseModel, withClassifier } from './model.js';
export { type FineTune, freezeForFineTuning } from './fine-tune.js';
export { type EpochLog, type TrainBaseOptions, trainBase, trainingFootprint } from './train.js';
export { type ImportSite, loadModelFile, ModelImportError, registerKerasExtensions } from './import/index.js';
export { ModelExportError } from './import/errors.js';
export { saveKerasFile } from './export/keras.js';
export { modelPredictor, type Predictor } from './predictor.js';
