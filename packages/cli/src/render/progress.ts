/**
 * Progress for long commands. On a terminal: one cli-progress bar per stage (base epoch, each
 * extraction, head training) with images or rows per second, ETA and loss/accuracy, coloured
 * unless NO_COLOR is set (https://no-color.org). Elsewhere (pipes, CI logs): one plain line per
 * base epoch, extraction and head epoch. With --json: nothing on stderr but errors.
 */
import type { ExtractProgress } from '@featherstack/core';
import { Presets, SingleBar } from 'cli-progress';
import type { HeadEpochProgress } from '@featherstack/head';

export interface BaseBatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  images: number;
  seconds: number;
  loss: number;
  acc: number;
}

/**
 * Whether colour may be used on `stream`: a terminal, and NO_COLOR unset or empty.
 *
 * @example
 * const red = useColor(process.stderr) ? '\u001b[31m' : '';
 */
export function useColor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}

const GREEN = '\u001b[32m';
const RESET = '\u001b[0m';

/**
 * Bars or lines for one command's stages; `line()` prints between bars, `stop()` restores the
 * terminal (call it in `finally`).
 *
 * @example
 * const progress = new Progress({ json: false });
 * try {
 *   await extractFeatures(tf, extractor, flow, 'f.arrow', { onBatch: progress.extract('f.arrow') });
 * } finally {
 *   progress.stop();
 * }
 */
export class Progress {
  readonly #stream: NodeJS.WriteStream;
  readonly #bar: SingleBar | null;
  readonly #quiet: boolean;
  #key = '';

  constructor(options: { json?: boolean; stream?: NodeJS.WriteStream } = {}) {
    this.#stream = options.stream ?? process.stderr;
    this.#quiet = options.json ?? false;
    const color = useColor(this.#stream);
    this.#bar =
      !this.#quiet && this.#stream.isTTY
        ? new SingleBar(
            {
              format: `{stage} ${color ? GREEN : ''}[{bar}]${color ? RESET : ''} {value}/{total} {unit} | {rate} | ETA {eta}s{scores}`,
              stream: this.#stream,
              hideCursor: true,
              clearOnComplete: true,
              barsize: 24,
              etaBuffer: 20,
            },
            Presets.legacy,
          )
        : null;
  }

  /** Whether bars are drawn (a terminal, not --json). */
  get interactive(): boolean {
    return this.#bar !== null;
  }

  /** A finished-stage line (e.g. "features: …"); clears any bar first. */
  line(text: string): void {
    if (this.#quiet) return;
    this.stop();
    this.#stream.write(`${text}\n`);
  }

  stop(): void {
    if (this.#key) this.#bar?.stop();
    this.#key = '';
  }

  #draw(key: string, value: number, total: number, payload: Record<string, string>): void {
    if (!this.#bar) return;
    if (this.#key !== key) {
      this.stop();
      this.#key = key;
      this.#bar.start(total, value, payload);
    } else this.#bar.update(value, payload);
  }

  /** Per base-training batch (bar only; the epoch's line comes from the caller's onEpochEnd). */
  base = (p: BaseBatchProgress): void => {
    this.#draw(`base-${p.epoch}`, p.batch, p.batches, {
      stage: `base epoch ${p.epoch + 1}`,
      unit: 'batches',
      rate: `${(p.images / p.seconds).toFixed(0)} images/s`,
      scores: ` | loss ${p.loss.toFixed(4)} acc ${p.acc.toFixed(4)}`,
    });
  };

  /** Per extracted batch of the feature file `name`. */
  extract(name: string): (p: ExtractProgress) => void {
    return (p) => {
      this.#draw(`extract-${name}`, p.batch, p.batches, {
        stage: `extract ${name}`,
        unit: 'batches',
        rate: `${(p.extractedRows / p.seconds).toFixed(0)} images/s`,
        scores: '',
      });
    };
  }

  /** Per head epoch: the bar on a terminal, a line elsewhere. */
  head = (p: HeadEpochProgress): void => {
    const scores = `loss ${p.loss.toFixed(4)} acc ${p.acc.toFixed(4)} val_loss ${p.valLoss.toFixed(4)} val_acc ${p.valAcc.toFixed(4)}`;
    if (this.#bar) {
      this.#draw('head', p.epoch + 1, p.epochs, { stage: 'head', unit: 'epochs', rate: `${(p.rows / p.seconds).toFixed(0)} rows/s`, scores: ` | ${scores}` });
    } else if (!this.#quiet) {
      this.#stream.write(`head epoch ${p.epoch + 1}/${p.epochs}: ${scores} (${(p.rows / p.seconds).toFixed(0)} rows/s)\n`);
    }
  };
}
