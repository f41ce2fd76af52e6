/** @featherstack/cli — the featherstack command, and its workflow as a function. */
export { type DoctorReport, doctor } from './doctor.js';
export { runWorkflow, SEED_AUGMENT, SHIPPED_DATASET, type WorkflowOptions, type WorkflowResult } from './workflow.js';
