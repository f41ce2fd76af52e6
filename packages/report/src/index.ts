/** @featherstack/report — a run's HTML report and the charts it (and the benchmarks) draw. */
export { barChart, confusionChart, type LineChartOptions, lineChart, type Series, svgToPng } from './charts.js';
export { augmentationGrid, type GridOptions, type ReportInput, type WrittenReport, writeReport } from './report.js';
