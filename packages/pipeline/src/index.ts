/**
 * @featherstack/pipeline — the stacked workflow, assembled once: the run's options (one schema for
 * flags, config files and the API, one place for defaults), the flows, the workflow and its stages
 * as separate steps, the trainer service (in process or in a worker thread), predict and evaluate.
 */
export { type CpuReport, cpuSampler } from './cpu.js';
export { evaluate, type ImageEvaluation } from './evaluate.js';
export { type CacheChoice, type ImageSettings, plainFlow, type RunCacheFormat, runCache, trainingFlow } from './flows.js';
export { type Inspection, inspect } from './inspect.js';
export { lockDirectory, lockOutputFile } from './lock.js';
export {
  applyConfig,
  augmentSchema,
  parseAugmentFlag,
  RUN_DEFAULTS,
  type ResolvedRunOptions,
  type RunConfig,
  readRunConfig,
  readRunFlag,
  resolveRunOptions,
  runConfigSchema,
  runOptionHelp,
  SEED_AUGMENT,
  seedAugment,
} from './options.js';
export { CONTROL_KEYS, controlsOf, type Monitor, type Plateau, type Schedule, type TrainingControls } from '@featherstack/common';
export { type Prediction, predict } from './predict.js';
export { exportKerasStage, extractStage, trainBaseStage, trainHeadStage } from './stages.js';
export { type BaseJob, inProcessTrainer, progress, startTrainer, type TrainerApi } from './trainer/trainer.js';
export { runWorkflow, type WorkflowHooks, type WorkflowOptions, type WorkflowResult } from './workflow.js';
export { inputImageSettings } from './imported.js';
