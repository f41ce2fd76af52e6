/**
 * @featherstack/cli — the featherstack command. Its work is a library too: the workflow, stages,
 * predict and evaluate are @featherstack/pipeline's, the report and charts @featherstack/report's.
 */
export { type DoctorReport, doctor } from './doctor.js';
