/** @featherstack/cli — the featherstack command, and its workflow as a function. */
export { type DoctorReport, doctor } from './doctor.js';
export { runWorkflow, SEED_AUGMENT, SHIPPED_DATASET, type WorkflowOptions, type WorkflowResult } from './workflow.js';
export { barChart, confusionChart, type LineChartOptions, lineChart, type Series, svgToPng } from './charts.js';
export { augmentationGrid, type GridOptions, type ReportInput, type WrittenReport, writeReport } from './report.js';
