/**
 * The run report: one self-contained HTML file (charts and sample images inlined as PNG data
 * URIs, no scripts, no network) plus the same charts as PNG files beside it.
 */
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { EpochLog } from '@featherstack/core';
import type { Evaluation } from '@featherstack/head';
import { type AugmentOptions, type ColorMode, flowFromFiles, type ImagePool } from '@featherstack/images';
import sharp from 'sharp';
import { barChart, confusionChart, escapeXml, lineChart, svgToPng } from './charts.js';
import { DEFAULT_SEED, writeFileAtomic } from '@featherstack/common';

export interface HeadEpoch {
  epoch: number;
  loss: number;
  acc: number;
  valLoss: number;
  valAcc: number;
}

export interface StageThroughput {
  stage: string;
  seconds: number;
  /** Items processed (images for base and extraction, feature rows for the head). */
  items: number;
  unit: string;
}

export interface ReportInput {
  title: string;
  /** Key facts shown at the top (dataset, sizes, versions), in order. */
  facts: [string, string][];
  base: EpochLog[];
  head: HeadEpoch[];
  evaluation: Evaluation;
  stages: StageThroughput[];
  /** How the stage times were taken, shown under the throughput table. */
  stagesNote?: string;
  /** PNG of augmented samples (see `augmentationGrid`), with a caption. */
  samples?: { png: Buffer; caption: string };
}

export interface WrittenReport {
  /** The HTML file. */
  html: string;
  /** Chart name → PNG file. */
  charts: Record<string, string>;
}

/**
 * Writes `file` (HTML) and its charts as PNGs in `<file without .html>/`. Written to temporary
 * names and renamed, so a report on disk is always whole.
 *
 * @example
 * const { html } = await writeReport('runs/a/report.html', { title: 'run a', facts: [], base, head, evaluation, stages: [] });
 */
export async function writeReport(file: string, input: ReportInput): Promise<WrittenReport> {
  const pngDir = join(dirname(file), basename(file, '.html'));
  await mkdir(pngDir, { recursive: true });
  const images: Record<string, string> = trainingCurves(input);
  const names = input.evaluation.perClass.map((m) => m.name);
  images.confusion = confusionChart(input.evaluation.confusion, names);
  images['per-class'] = barChart({
    title: 'F1 per class (validation)',
    unit: '',
    bars: input.evaluation.perClass.map((m) => ({ label: m.name, value: m.f1 })),
  });
  images.throughput = barChart({
    title: 'Throughput per stage',
    unit: '/s',
    bars: input.stages.map((s) => ({ label: `${s.stage} (${s.unit})`, value: s.items / s.seconds })),
  });
  const charts: Record<string, string> = {};
  const png: Record<string, Buffer> = {};
  for (const [name, svgText] of Object.entries(images)) {
    png[name] = await svgToPng(svgText);
    charts[name] = join(pngDir, `${name}.png`);
  }
  if (input.samples) {
    png.samples = input.samples.png;
    charts.samples = join(pngDir, 'samples.png');
  }
  await Promise.all(Object.entries(png).map(([name, bytes]) => writeFileAtomic(charts[name]!, bytes)));
  await writeFileAtomic(file, renderHtml(input, png));
  return { html: file, charts };
}

/**
 * The loss and accuracy curves of base and head as SVG documents, by chart name; a curve without
 * any finite value (e.g. validation of a base trained without it) is left out, and so is a chart
 * left with no curve. @internal
 */
export function trainingCurves(input: Pick<ReportInput, 'base' | 'head'>): Record<string, string> {
  const charts: Record<string, string> = {};
  const curve = (name: string, title: string, log: readonly object[], yLabel: string, keys: [string, string][]) => {
    const series = keys
      .map(([key, label]) => ({
        label,
        points: log.map((e): [number, number] => [(e as { epoch: number }).epoch + 1, Number((e as Record<string, unknown>)[key])]),
      }))
      .filter((s) => s.points.some((p) => Number.isFinite(p[1])));
    if (series.length > 0) charts[name] = lineChart({ title, xLabel: 'epoch', yLabel, series, integerX: true, yMin: 'auto' });
  };
  curve('base-loss', 'Base CNN: loss per epoch', input.base, 'loss', [
    ['loss', 'training'],
    ['valLoss', 'validation'],
  ]);
  curve('base-accuracy', 'Base CNN: accuracy per epoch', input.base, 'accuracy', [
    ['acc', 'training'],
    ['valAcc', 'validation'],
  ]);
  curve('head-loss', 'Head: loss per epoch', input.head, 'loss', [
    ['loss', 'training'],
    ['valLoss', 'validation'],
  ]);
  curve('head-accuracy', 'Head: accuracy per epoch', input.head, 'accuracy', [
    ['acc', 'training'],
    ['valAcc', 'validation'],
  ]);
  return charts;
}

const fmt = (v: number, digits = 4) => (Number.isFinite(v) ? v.toFixed(digits) : '–');

function img(png: Record<string, Buffer>, name: string, alt: string): string {
  const bytes = png[name];
  return bytes ? `<img id="chart-${name}" alt="${escapeXml(alt)}" src="data:image/png;base64,${bytes.toString('base64')}">` : '';
}

function renderHtml(input: ReportInput, png: Record<string, Buffer>): string {
  const e = input.evaluation;
  const rows = (cells: string[][], head: string[]) =>
    `<table><thead><tr>${head.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${cells.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
  const total = input.stages.reduce((a, s) => a + s.seconds, 0);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeXml(input.title)}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;display:block;margin:.5em 0}
.row{display:flex;flex-wrap:wrap;gap:1em}.row img{max-width:48%}
</style></head>
<body>
<h1>${escapeXml(input.title)}</h1>
<section id="summary"><h2>Summary</h2>
${rows(
  [
    ['validation accuracy', fmt(e.accuracy)],
    ...Object.entries(e.topK).map(([k, v]) => [`top-${k} accuracy`, fmt(v)]),
    ['macro F1', fmt(e.macro.f1)],
    ['validation samples', String(e.samples)],
    ...input.facts.map(([k, v]) => [escapeXml(k), escapeXml(v)]),
  ],
  ['', 'value'],
)}
</section>
<section id="training"><h2>Training curves</h2>
<div class="row">${img(png, 'base-loss', 'base loss per epoch')}${img(png, 'base-accuracy', 'base accuracy per epoch')}</div>
<div class="row">${img(png, 'head-loss', 'head loss per epoch')}${img(png, 'head-accuracy', 'head accuracy per epoch')}</div>
${rows(
  input.base.map((b) => [
    String(b.epoch + 1),
    fmt(b.loss),
    fmt(b.acc),
    fmt(b.valLoss ?? Number.NaN),
    fmt(b.valAcc ?? Number.NaN),
    b.imagesPerSecond.toFixed(0),
  ]),
  ['base epoch', 'loss', 'accuracy', 'val loss', 'val accuracy', 'images/s'],
)}
${rows(
  input.head.map((h) => [String(h.epoch + 1), fmt(h.loss), fmt(h.acc), fmt(h.valLoss), fmt(h.valAcc)]),
  ['head epoch', 'loss', 'accuracy', 'val loss', 'val accuracy'],
)}
</section>
<section id="throughput"><h2>Throughput per stage</h2>
${img(png, 'throughput', 'throughput per stage')}
${rows(
  input.stages.map((s) => [
    escapeXml(s.stage),
    s.seconds.toFixed(2),
    `${((s.seconds / total) * 100).toFixed(0)} %`,
    String(s.items),
    `${(s.items / s.seconds).toFixed(0)} ${escapeXml(s.unit)}/s`,
  ]),
  ['stage', 'seconds', 'share', 'items', 'throughput'],
)}
${input.stagesNote ? `<p>${escapeXml(input.stagesNote)}</p>` : ''}
</section>
<section id="evaluation"><h2>Validation: confusion matrix and per-class metrics</h2>
${img(png, 'confusion', 'confusion matrix')}
${img(png, 'per-class', 'F1 per class')}
${rows(
  e.perClass.map((m) => [escapeXml(m.name), fmt(m.precision, 3), fmt(m.recall, 3), fmt(m.f1, 3), String(m.support)]),
  ['class', 'precision', 'recall', 'F1', 'support'],
)}
</section>
${
  input.samples
    ? `<section id="samples"><h2>Augmented samples</h2><p>${escapeXml(input.samples.caption)}</p>${img(png, 'samples', 'augmented training samples')}</section>`
    : ''
}
</body></html>
`;
}

export interface GridOptions {
  /** One image per row: the original (rescaled only) then `variants` augmented draws. */
  files: string[];
  augment: AugmentOptions;
  targetSize: [number, number];
  colorMode: ColorMode;
  variants?: number;
  seed?: number;
  pool?: ImagePool;
  /** Displayed pixels per image pixel (default: enough for ~96 px tiles). */
  scale?: number;
}

/**
 * A PNG grid of augmented samples through the same loading and augmentation as training: each row
 * one image, its first column without augmentation. Tiles are stretched to 0–255 individually, so
 * standardised pixels show too.
 *
 * @example
 * const png = await augmentationGrid({ files: ['a.png', 'b.png'], augment: { rescale: 1 / 255, zoomRange: 0.2 }, targetSize: [28, 28], colorMode: 'grayscale' });
 */
export async function augmentationGrid(options: GridOptions): Promise<Buffer> {
  const variants = options.variants ?? 6;
  const { files } = options;
  const common = {
    targetSize: options.targetSize,
    colorMode: options.colorMode,
    shuffle: false,
    seed: options.seed ?? DEFAULT_SEED,
    ...(options.pool ? { pool: options.pool } : {}),
  };
  const rescale = options.augment.rescale !== undefined ? { rescale: options.augment.rescale } : {};
  const batchSize = 16;
  const repeated = files.flatMap((f) => Array<string>(variants).fill(f));
  const flows: Awaited<ReturnType<typeof flowFromFiles>>[] = [];
  try {
    flows.push(await flowFromFiles(files, { ...common, augment: rescale, batchSize }));
    flows.push(await flowFromFiles(repeated, { ...common, augment: options.augment, batchSize }));
    const original = await collect(flows[0]!);
    const drawn = await collect(flows[1]!);
    const [, h, w, c] = original.shape;
    const channels = c === 1 ? 1 : 3;
    const gap = 2;
    const cols = variants + 1;
    const width = cols * w + (cols + 1) * gap;
    const height = files.length * h + (files.length + 1) * gap;
    const grid = Buffer.alloc(width * height * channels, 255);
    const put = (pixels: ArrayLike<number>, offset: number, row: number, col: number) => {
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < h * w * c; i++) {
        const v = pixels[offset + i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const k = hi > lo ? 255 / (hi - lo) : 0;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const dst = ((gap + row * (h + gap) + y) * width + gap + col * (w + gap) + x) * channels;
          for (let ch = 0; ch < channels; ch++) grid[dst + ch] = Math.round((pixels[offset + (y * w + x) * c + ch]! - lo) * k);
        }
      }
    };
    for (let r = 0; r < files.length; r++) {
      put(original.images, r * h * w * c, r, 0);
      for (let v = 0; v < variants; v++) put(drawn.images, (r * variants + v) * h * w * c, r, v + 1);
    }
    const scale = options.scale ?? Math.max(1, Math.round(96 / Math.max(h, w)));
    return await sharp(grid, { raw: { width, height, channels } })
      .resize({ width: width * scale, height: height * scale, kernel: 'nearest' })
      .png()
      .toBuffer();
  } finally {
    await Promise.all(flows.map((f) => f.close()));
  }
}

/** Every batch of a flow's first epoch, copied out of the slot ring into one array. */
async function collect(
  flow: Awaited<ReturnType<typeof flowFromFiles>>,
): Promise<{ images: Float32Array | Uint8Array; shape: [number, number, number, number] }> {
  const parts: (Float32Array | Uint8Array)[] = [];
  let shape: [number, number, number, number] = [0, 0, 0, 0];
  for await (const batch of flow.epoch(0)) {
    parts.push(batch.images.slice());
    shape = [shape[0] + batch.size, batch.shape[1], batch.shape[2], batch.shape[3]];
  }
  const images = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    images.set(p, offset);
    offset += p.length;
  }
  if (shape[0] !== flow.samples)
    throw new Error(
      `augmentation samples: ${flow.samples - shape[0]} of ${flow.samples} images could not be loaded (${flow.skippedFiles.map((f) => f.path).join(', ')})`,
    );
  return { images, shape };
}
