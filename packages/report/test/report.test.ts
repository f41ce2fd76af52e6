import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { SHIPPED_TRAIN } from '@featherstack/fixtures';
import { describe, expect, it } from 'vitest';
import { barChart, confusionChart, label, lineChart, svgToPng } from '../dist/charts.js';
import { augmentationGrid, type ReportInput, trainingCurves, writeReport } from '../dist/report.js';

const shipped = SHIPPED_TRAIN;

async function firstImages(count: number): Promise<string[]> {
  const classes = (await readdir(shipped)).sort().slice(0, count);
  return Promise.all(classes.map(async (c) => join(shipped, c, (await readdir(join(shipped, c))).sort()[0]!)));
}

const input = (): ReportInput => ({
  title: 'a <test> run',
  facts: [['dataset', '/data/x & y']],
  base: [
    { epoch: 0, loss: 1.2, acc: 0.5, seconds: 2, imagesPerSecond: 100 },
    { epoch: 1, loss: 0.8, acc: 0.7, seconds: 2, imagesPerSecond: 110 },
  ],
  head: [
    { epoch: 0, loss: 0.9, acc: 0.6, valLoss: 1.0, valAcc: 0.55 },
    { epoch: 1, loss: 0.6, acc: 0.8, valLoss: 0.7, valAcc: 0.75 },
  ],
  evaluation: {
    samples: 7,
    accuracy: 5 / 7,
    topK: { '1': 5 / 7, '3': 1 },
    perClass: [
      { name: 'cat', precision: 0.75, recall: 0.75, f1: 0.75, support: 4 },
      { name: 'dog', precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, support: 3 },
    ],
    macro: { precision: 0.71, recall: 0.71, f1: 0.71 },
    confusion: [
      [3, 1],
      [1, 2],
    ],
  },
  stages: [
    { stage: 'base training', seconds: 4, items: 420, unit: 'images' },
    { stage: 'feature extraction', seconds: 0.5, items: 300, unit: 'images' },
    { stage: 'head training', seconds: 0.25, items: 1000, unit: 'rows' },
  ],
});

describe('charts', () => {
  it('rasterise to PNGs of the declared size', async () => {
    const svg = lineChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          label: 'a',
          points: [
            [1, 2],
            [2, 3],
          ],
        },
      ],
      width: 500,
      height: 300,
    });
    const meta = await sharp(await svgToPng(svg)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 500, 300]);
    const bars = await sharp(
      await svgToPng(
        barChart({
          title: 'b',
          unit: '/s',
          bars: [
            { label: 'one', value: 1 },
            { label: 'two', value: 2 },
          ],
        }),
      ),
    ).metadata();
    expect(bars.width).toBe(640);
    expect(bars.height).toBe(36 + 12 + 2 * 26);
  });

  it('draw each confusion cell with its count and shade by the share of its true class', () => {
    const svg = confusionChart(
      [
        [9, 1],
        [0, 10],
      ],
      ['a', 'b'],
    );
    expect(svg.match(/>9<\/text>/g)).toHaveLength(1);
    expect(svg.match(/>10<\/text>/g)).toHaveLength(1);
    expect(svg).not.toMatch(/>0<\/text>/); // empty cells stay blank
    const fills = [...svg.matchAll(/fill="rgb\((\d+),/g)].map((m) => Number(m[1]));
    expect(fills).toEqual([255 - 180, 255 - 20, 255, 255 - 200]);
  });

  it('escape labels and refuse a chart without finite points', () => {
    expect(lineChart({ title: '<b>&', xLabel: 'x', yLabel: 'y', series: [{ label: 'a"', points: [[0, 1]] }] })).toContain('&lt;b&gt;&amp;');
    expect(() => lineChart({ title: 'empty', xLabel: 'x', yLabel: 'y', series: [{ label: 'a', points: [[0, Number.NaN]] }] })).toThrow(
      /'empty': no finite points/,
    );
  });

  it('refuse a confusion matrix that does not match the class names', () => {
    expect(() => confusionChart([[1, 2]], ['a', 'b'])).toThrow('confusionChart: the matrix must be 2 × 2 for 2 class names, received 1 rows of 2');
  });

  it('reject invalid SVG instead of throwing synchronously', async () => {
    const result = svgToPng('<svg');
    expect(result).toBeInstanceOf(Promise);
    await expect(result).rejects.toThrow();
  });

  it('label values without losing digits', () => {
    expect([89.87, 30.2, 12.4, 0.5, 0.84, 1.25, 7, 372.3, 19551].map(label)).toEqual(['90', '30', '12', '0.5', '0.84', '1.3', '7', '372', '20k']);
    expect(barChart({ title: 'b', unit: 's', bars: [{ label: 'total', value: 89.87 }] })).toContain('>90 s</text>');
  });

  it('mark a bar without a value as not run', () => {
    expect(barChart({ title: 'b', unit: 'x', bars: [{ label: 'Keras', value: Number.NaN }] })).toContain('not run');
  });
});

describe('writeReport', () => {
  it('writes one self-contained HTML file with every chart inline and as PNG files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-report-'));
    const report = await writeReport(join(dir, 'report.html'), {
      ...input(),
      samples: { png: await svgToPng(barChart({ title: 's', unit: '', bars: [] })), caption: 'grid' },
    });
    expect(Object.keys(report.charts).sort()).toEqual([
      'base-accuracy',
      'base-loss',
      'confusion',
      'head-accuracy',
      'head-loss',
      'per-class',
      'samples',
      'throughput',
    ]);
    const html = await readFile(report.html, 'utf8');
    for (const [name, file] of Object.entries(report.charts)) {
      const png = await readFile(file);
      expect((await sharp(png).metadata()).format).toBe('png');
      // The inline copy is the same image: the HTML needs nothing beside it.
      expect(html).toContain(`id="chart-${name}" `);
      expect(html).toContain(`data:image/png;base64,${png.toString('base64')}"`);
    }
    expect(html).not.toMatch(/<script|src="(?!data:)|href="http/);
    expect(html).toContain('a &lt;test&gt; run');
    expect(html).toContain('/data/x &amp; y');
    // Numbers in the tables come from the inputs.
    expect(html).toContain('<td>validation accuracy</td><td>0.7143</td>');
    expect(html).toContain('<td>top-3 accuracy</td><td>1.0000</td>');
    expect(html).toContain('<td>dog</td><td>0.667</td><td>0.667</td><td>0.667</td><td>3</td>');
    expect(html).toContain('<td>head training</td><td>0.25</td><td>5 %</td><td>1000</td><td>4000 rows/s</td>');
    expect((await readdir(join(dir, 'report'))).filter((f) => f.includes('partial'))).toEqual([]);
    expect(await readdir(dir)).toEqual(['report', 'report.html']);
  });

  it('draws a validation curve only where there are validation values', () => {
    const withoutValidation = trainingCurves(input());
    expect(withoutValidation['base-loss']).toContain('>training</text>');
    expect(withoutValidation['base-loss']).not.toContain('>validation</text>');
    expect(withoutValidation['head-loss']).toContain('>validation</text>');
    const validated = trainingCurves({ ...input(), base: input().base.map((b) => ({ ...b, valLoss: b.loss + 0.1, valAcc: b.acc - 0.1 })) });
    expect(validated['base-loss']).toContain('>validation</text>');
  });

  it('leaves out curves with no values (a base trained without validation has no validation line)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-report-'));
    const report = await writeReport(join(dir, 'r.html'), { ...input(), head: [] });
    expect(report.charts['head-loss']).toBeUndefined();
    expect(report.charts.samples).toBeUndefined();
    expect(report.charts['base-loss']).toBe(join(dir, 'r', 'base-loss.png'));
    const html = await readFile(report.html, 'utf8');
    expect(html).not.toContain('chart-head-loss');
    expect(html).not.toContain('id="samples"');
  });
});

describe('augmentationGrid', () => {
  it('puts each image plain in the first column and augmented draws beside it', async () => {
    const files = await firstImages(3);
    const png = await augmentationGrid({
      files,
      augment: { rescale: 1 / 255, horizontalFlip: true, zoomRange: 0.3 },
      targetSize: [28, 28],
      colorMode: 'grayscale',
      variants: 4,
      scale: 1,
      seed: 3,
    });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([5 * 28 + 6 * 2, 3 * 28 + 4 * 2]);
    const tile = (row: number, col: number) => {
      const out: number[] = [];
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) out.push(data[((2 + row * 30 + y) * info.width + 2 + col * 30 + x) * info.channels]!);
      return out;
    };
    // The first column is the image itself, stretched to full contrast.
    for (const [row, file] of files.entries()) {
      const raw = await sharp(file).greyscale().raw().toBuffer();
      let lo = 255;
      let hi = 0;
      for (const v of raw) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
      const expected = [...raw].map((v) => Math.round(((v - lo) * 255) / (hi - lo)));
      expect(tile(row, 0).every((v, i) => Math.abs(v - expected[i]!) <= 1)).toBe(true);
      // Augmented draws differ from the plain image.
      for (let col = 1; col <= 4; col++) expect(tile(row, col)).not.toEqual(tile(row, 0));
    }
  });

  it('without augmentation every draw equals the plain image', async () => {
    const files = await firstImages(2);
    const png = await augmentationGrid({ files, augment: { rescale: 1 / 255 }, targetSize: [28, 28], colorMode: 'grayscale', variants: 2, scale: 2 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(info.width).toBe(2 * (3 * 28 + 4 * 2));
    const row = (y: number, col: number) => [
      ...data.subarray((y * info.width + col * 60 + 4) * info.channels, (y * info.width + col * 60 + 4 + 56) * info.channels),
    ];
    for (const y of [10, 40, 70]) expect(row(y, 1)).toEqual(row(y, 0));
  });

  it('names the file that could not be loaded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fs-grid-'));
    const broken = join(dir, 'broken.png');
    await import('node:fs/promises').then((fs) => fs.writeFile(broken, 'not an image'));
    await expect(augmentationGrid({ files: [broken], augment: {}, targetSize: [28, 28], colorMode: 'grayscale' })).rejects.toThrow(/broken\.png/);
  });
});
