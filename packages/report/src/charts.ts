/**
 * Small SVG charts (lines, bars, a heat map) rasterised to PNG by sharp (librsvg inside libvips),
 * for run reports and benchmark results. No browser and no plotting runtime needed.
 */
import sharp from 'sharp';

export interface Series {
  label: string;
  /** [x, y] points; drawn as a line with a dot per point. */
  points: [number, number][];
  color?: string;
  dash?: string;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Horizontal reference lines (a ceiling, a peer's result). */
  references?: { label: string; value: number; color?: string }[];
  /** Lower bound of the y axis (default 0); `'auto'` fits the data. */
  yMin?: number | 'auto';
  /** Ticks on the x axis only at the points' x values (e.g. worker counts). */
  integerX?: boolean;
  width?: number;
  height?: number;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Escapes text for SVG and HTML content and attribute values. @internal */
export function escapeXml(text: string | number): string {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A value as a short label: thousands as k, else at most two significant digits below 100. @internal */
export function label(v: number): string {
  const a = Math.abs(v);
  if (a >= 10_000) return `${(v / 1000).toFixed(0)}k`;
  if (a >= 100 || Number.isInteger(v)) return v.toFixed(0);
  // Two significant digits; trailing zeros only go after a decimal point (90, not 9; 0.5, not 0.50).
  return Number(v.toPrecision(2)).toString();
}

/**
 * A line chart as an SVG document.
 *
 * @example
 * const svg = lineChart({ title: 'loss', xLabel: 'epoch', yLabel: 'loss', series: [{ label: 'training', points: [[1, 0.9], [2, 0.6]] }] });
 */
export function lineChart(options: LineChartOptions): string {
  const W = options.width ?? 640;
  const H = options.height ?? 360;
  const pad = { l: 64, r: 180, t: 36, b: 48 };
  const xs = options.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = [...options.series.flatMap((s) => s.points.map((p) => p[1])), ...(options.references ?? []).map((r) => r.value)].filter(Number.isFinite);
  if (xs.length === 0 || ys.length === 0) throw new Error(`lineChart '${options.title}': no finite points to draw`);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  let y0 = options.yMin === 'auto' ? Math.min(...ys) : (options.yMin ?? Math.min(0, ...ys));
  let y1 = Math.max(...ys);
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const span = y1 - y0;
  if (options.yMin === 'auto') y0 -= span * 0.05;
  y1 += span * 0.08;
  const x = (v: number) => pad.l + ((v - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const y = (v: number) => H - pad.b - ((v - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  const xTicks = options.integerX ? [...new Set(xs)].sort((a, b) => a - b) : ticks(x0, x1);
  const parts: string[] = [
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${pad.l}" y="22" font-size="${titleSize(options.title, W - pad.l - 8)}" font-weight="bold">${escapeXml(options.title)}</text>`,
    ...ticks(y0, y1).map(
      (t) =>
        `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(t)}" y2="${y(t)}" stroke="#e5e5e5"/><text x="${pad.l - 6}" y="${y(t) + 4}" text-anchor="end">${label(t)}</text>`,
    ),
    ...xTicks.map((t) => `<text x="${x(t)}" y="${H - pad.b + 16}" text-anchor="middle">${label(t)}</text>`),
    `<line x1="${pad.l}" y1="${H - pad.b}" x2="${W - pad.r}" y2="${H - pad.b}" stroke="black"/>`,
    `<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${H - pad.b}" stroke="black"/>`,
    `<text x="${(pad.l + W - pad.r) / 2}" y="${H - 10}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`,
    `<text transform="translate(16 ${(pad.t + H - pad.b) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
  ];
  let legendY = pad.t + 8;
  for (const r of options.references ?? []) {
    const color = r.color ?? '#888';
    parts.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(r.value)}" y2="${y(r.value)}" stroke="${color}" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${W - pad.r + 10}" y="${legendY}" fill="${color}">${escapeXml(`${r.label} ${label(r.value)}`)}</text>`);
    legendY += 18;
  }
  for (const [i, s] of options.series.entries()) {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const finite = s.points.filter((p) => Number.isFinite(p[1]));
    parts.push(
      `<polyline points="${finite.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    for (const p of finite) parts.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3.5" fill="${color}"/>`);
    parts.push(
      `<line x1="${W - pad.r + 10}" x2="${W - pad.r + 30}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    parts.push(`<text x="${W - pad.r + 36}" y="${legendY}">${escapeXml(s.label)}</text>`);
    legendY += 18;
  }
  return svg(W, H, parts);
}

export interface BarChartOptions {
  title: string;
  /** Unit shown after each value. */
  unit: string;
  bars: { label: string; value: number; color?: string }[];
  width?: number;
}

/**
 * Horizontal bars with their values, one per row; a bar whose value is not finite reads "not run".
 *
 * @example
 * const svg = barChart({ title: 'images/s', unit: 'images/s', bars: [{ label: 'featherstack', value: 322 }, { label: 'Keras', value: 102 }] });
 */
export function barChart(options: BarChartOptions): string {
  const W = options.width ?? 640;
  const row = 26;
  // ~7 px per character of the 12 px font.
  const pad = { l: 16 + 7 * Math.max(8, ...options.bars.map((b) => b.label.length)), r: 120, t: 36, b: 12 };
  const H = pad.t + pad.b + row * options.bars.length;
  const max = Math.max(...options.bars.map((b) => b.value).filter(Number.isFinite), 0) || 1;
  const parts = [
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="8" y="22" font-size="${titleSize(options.title, W - 16)}" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  for (const [i, b] of options.bars.entries()) {
    const top = pad.t + i * row;
    const w = Number.isFinite(b.value) ? (b.value / max) * (W - pad.l - pad.r) : 0;
    parts.push(`<text x="${pad.l - 8}" y="${top + 17}" text-anchor="end">${escapeXml(b.label)}</text>`);
    parts.push(`<rect x="${pad.l}" y="${top + 4}" width="${w.toFixed(1)}" height="${row - 8}" fill="${b.color ?? PALETTE[0]}"/>`);
    parts.push(`<text x="${pad.l + w + 6}" y="${top + 17}">${escapeXml(Number.isFinite(b.value) ? `${label(b.value)} ${options.unit}` : 'not run')}</text>`);
  }
  return svg(W, H, parts);
}

/**
 * A confusion matrix: rows are true classes, columns predictions; cells shaded by row share.
 *
 * @example
 * const svg = confusionChart([[9, 1], [2, 8]], ['cat', 'dog']);
 */
export function confusionChart(matrix: number[][], classNames: string[], title = 'Confusion matrix (rows: true class, columns: predicted)'): string {
  const n = classNames.length;
  if (matrix.length !== n || matrix.some((row) => row.length !== n)) {
    throw new Error(
      `confusionChart: the matrix must be ${n} × ${n} for ${n} class names, received ${matrix.length} rows of ${matrix.map((r) => r.length).join('/')}`,
    );
  }
  const cell = Math.max(22, Math.min(44, Math.floor(440 / Math.max(1, n))));
  const longest = Math.max(4, ...classNames.map((c) => c.length));
  const pad = { l: 16 + 7 * longest, t: 40, b: 20 + 6 * longest };
  const W = pad.l + cell * n + 4 * longest;
  const H = pad.t + cell * n + pad.b;
  const parts = [`<rect width="100%" height="100%" fill="white"/>`, `<text x="8" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`];
  for (let t = 0; t < n; t++) {
    const total = matrix[t]!.reduce((a, b) => a + b, 0) || 1;
    parts.push(`<text x="${pad.l - 6}" y="${pad.t + t * cell + cell / 2 + 4}" text-anchor="end">${escapeXml(classNames[t]!)}</text>`);
    for (let p = 0; p < n; p++) {
      const v = matrix[t]![p]!;
      const share = v / total;
      // White → blue by share of the true class; text flips to white on dark cells.
      const shade = Math.round(255 - share * 200);
      parts.push(
        `<rect x="${pad.l + p * cell}" y="${pad.t + t * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${Math.round(255 - share * 140)},255)" stroke="#ddd"/>`,
      );
      if (v > 0)
        parts.push(
          `<text x="${pad.l + p * cell + cell / 2}" y="${pad.t + t * cell + cell / 2 + 4}" text-anchor="middle" font-size="${cell < 30 ? 9 : 11}" fill="${share > 0.6 ? 'white' : 'black'}">${v}</text>`,
        );
    }
  }
  for (let p = 0; p < n; p++) {
    const cx = pad.l + p * cell + cell / 2;
    const cy = pad.t + n * cell + 8;
    parts.push(`<text transform="translate(${cx + 4} ${cy}) rotate(60)">${escapeXml(classNames[p]!)}</text>`);
  }
  return svg(W, H, parts);
}

/** A bold title's font size (≤ 14 px) that fits `room` pixels (~0.62 em per character). */
function titleSize(title: string, room: number): number {
  return Math.max(9, Math.min(14, Math.floor(room / (0.62 * title.length))));
}

function svg(width: number, height: number, parts: string[]): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">\n  ${parts.join('\n  ')}\n</svg>\n`;
}

/**
 * Rasterises an SVG document to PNG bytes (librsvg through sharp); rejects invalid SVG.
 *
 * @example
 * await writeFile('chart.png', await svgToPng(lineChart(options)));
 */
export async function svgToPng(svgText: string): Promise<Buffer> {
  return sharp(Buffer.from(svgText)).png({ compressionLevel: 9 }).toBuffer();
}
