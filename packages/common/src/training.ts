/**
 * The training controls Keras users reach for, declared once for base training, fine-tuning and the
 * head: a learning-rate schedule with warm-up, reduce-on-plateau, best-only tracking of a named
 * metric, and a CSV log. Pure logic over epoch logs (no TensorFlow): each trainer asks for the
 * epoch's rate before it and reports the epoch's scores after it, and the decisions are Keras's.
 *
 * State is a function of the history: a resumed run replays its saved epochs through `replay` and
 * continues exactly where the killed one stood.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { invalidOption, is, OptionError } from './validate.js';

/**
 * The seed a trainer, a pack or a report uses when none is given: `run`'s, so that a library call
 * and the CLI that wraps it draw the same initial weights and orders.
 */
export const DEFAULT_SEED = 42;

/** The epoch scores the controls can watch, by their Keras names. */
export const MONITORS = ['loss', 'acc', 'val_loss', 'val_acc'] as const;
export type Monitor = (typeof MONITORS)[number];

/** An epoch's scores as the trainers log them. */
export interface EpochScores {
  loss: number;
  acc: number;
  valLoss?: number;
  valAcc?: number;
}

/**
 * The learning rate per epoch after warm-up: 'constant'; 'step' multiplies it by `factor` every
 * `every` epochs (ExponentialDecay with staircase); 'cosine' falls from it to `minLearningRate`
 * over the remaining epochs (Keras's CosineDecay with alpha = minLearningRate / learningRate).
 */
export type Schedule = { kind: 'constant' } | { kind: 'step'; every: number; factor: number } | { kind: 'cosine'; minLearningRate?: number };

/** Keras's ReduceLROnPlateau, with its defaults. */
export interface Plateau {
  /** Default 'val_loss'. */
  monitor?: Monitor;
  /** Default 0.1. */
  factor?: number;
  /** Epochs without improvement before the rate is reduced. Default 10. */
  patience?: number;
  /** Default 1e-4. */
  minDelta?: number;
  /** Epochs after a reduction during which no epoch counts as a wait. Default 0. */
  cooldown?: number;
  /** Default 0. */
  minLearningRate?: number;
}

export interface TrainingControls {
  /** Default constant. */
  schedule?: Schedule;
  /** Epochs of linear warm-up: epoch e < n trains at learningRate · (e + 1) / n. Default 0. */
  warmupEpochs?: number;
  reduceOnPlateau?: Plateau;
  /** A CSV file with a row per epoch (epoch, loss, acc, val_loss, val_acc, lr), as Keras's CSVLogger; appended on resume. */
  csvLog?: string;
  /** The metric best-only checkpointing watches (as ModelCheckpoint's save_best_only). Default 'val_loss'. */
  bestMonitor?: Monitor;
  /**
   * Keras's class_weight: each training example's loss (and gradient) weighs its class's weight.
   * 'balanced': n / (classes · count of the class), scikit-learn's compute_class_weight, as Keras's
   * imbalanced-data guide computes it; or weights by class name or index (classes not named weigh 1).
   */
  classWeight?: ClassWeight;
}

export type ClassWeight = 'balanced' | Record<string, number>;

/**
 * The weight of each class (by index) for `spec`, from the classes' names and the training data's
 * labels (class indices; 'balanced' counts them). Refuses, naming the key, a class that does not
 * exist or a weight that is not a positive finite number.
 *
 * @example
 * classWeights('balanced', ['cat', 'dog'], labels); // 90 cats, 10 dogs: Float32Array [0.5556, 5]
 * classWeights({ dog: 3 }, ['cat', 'dog'], labels); // Float32Array [1, 3]
 */
export function classWeights(
  spec: ClassWeight,
  classNames: readonly string[],
  labels: ArrayLike<number>,
  Kind: new (m: string) => Error = OptionError,
): Float32Array {
  const k = classNames.length;
  if (spec === 'balanced') {
    const counts = new Float64Array(k);
    for (let i = 0; i < labels.length; i++) counts[labels[i]!]! += 1;
    const n = labels.length;
    return Float32Array.from(classNames, (name, c) => {
      if (!(counts[c]! > 0))
        throw invalidOption('classWeight', `'balanced' over classes that all have examples (class ${JSON.stringify(name)} has none)`, spec, Kind);
      return n / (k * counts[c]!);
    });
  }
  if (!is.object(spec)) throw invalidOption('classWeight', "'balanced' or weights by class name or index", spec, Kind);
  const weights = new Float32Array(k).fill(1);
  for (const [key, weight] of Object.entries(spec)) {
    const index = classNames.indexOf(key) !== -1 ? classNames.indexOf(key) : /^\d+$/.test(key) && Number(key) < k ? Number(key) : -1;
    if (index === -1)
      throw invalidOption(`classWeight.${key}`, `a class of the training data (${classNames.join(', ')}) or its index below ${k}`, weight, Kind);
    if (!(is.number(weight) && weight > 0)) throw invalidOption(`classWeight.${key}`, 'a positive number', weight, Kind);
    weights[index] = weight;
  }
  return weights;
}

const KEY: Record<Monitor, keyof EpochScores> = { loss: 'loss', acc: 'acc', val_loss: 'valLoss', val_acc: 'valAcc' };

/** Whether `monitor` improves upward (accuracies) or downward (losses), as Keras's mode 'auto'. */
const upward = (monitor: Monitor) => monitor.endsWith('acc');

/** `monitor`'s value in `scores`, or a refusal naming the option when the epoch has no such score. */
export function scoreOf(scores: EpochScores, monitor: Monitor, option: string, Kind: new (m: string) => Error = OptionError): number {
  const value = scores[KEY[monitor]];
  if (value === undefined || Number.isNaN(value)) {
    throw invalidOption(
      option,
      `a score the epochs have (${monitor} needs ${monitor.startsWith('val') ? 'validation data' : 'training scores in memory'})`,
      monitor,
      Kind,
    );
  }
  return value;
}

/**
 * The validation scores that `c` (and keepBest) watch, each with the option that watches it: what a
 * trainer without validation data refuses before it trains.
 */
export function watchedValidation(c: ResolvedControls, keepBest: boolean | undefined): { option: string; monitor: Monitor }[] {
  return [
    ...(keepBest ? [{ option: 'keepBest', monitor: c.bestMonitor }] : []),
    ...(c.reduceOnPlateau ? [{ option: 'reduceOnPlateau.monitor', monitor: c.reduceOnPlateau.monitor }] : []),
  ].filter((w) => w.monitor.startsWith('val_'));
}

/** The controls with Keras's defaults filled. */
export interface ResolvedControls {
  schedule: Schedule;
  warmupEpochs: number;
  bestMonitor: Monitor;
  csvLog?: string;
  reduceOnPlateau?: Required<Plateau>;
}

/** Checks `controls` (from the API or a config) and fills Keras's defaults; errors name the option. */
export function resolveControls(controls: TrainingControls | undefined, Kind: new (m: string) => Error = OptionError): ResolvedControls {
  const c = controls ?? {};
  const schedule = c.schedule ?? { kind: 'constant' };
  if (!is.object(schedule) || !['constant', 'step', 'cosine'].includes(schedule.kind as string))
    throw invalidOption('schedule', "{ kind: 'constant' | 'step' | 'cosine', … }", schedule, Kind);
  if (schedule.kind === 'step' && (!is.positiveInteger(schedule.every) || !is.inRange(schedule.factor, Number.MIN_VALUE, 1)))
    throw invalidOption('schedule', "{ kind: 'step', every: a positive integer of epochs, factor: a number in (0, 1] }", schedule, Kind);
  if (schedule.kind === 'cosine' && schedule.minLearningRate !== undefined && !(is.number(schedule.minLearningRate) && schedule.minLearningRate >= 0))
    throw invalidOption('schedule.minLearningRate', 'a number ≥ 0', schedule.minLearningRate, Kind);
  const warmupEpochs = c.warmupEpochs ?? 0;
  if (!is.nonNegativeInteger(warmupEpochs)) throw invalidOption('warmupEpochs', 'a non-negative integer', warmupEpochs, Kind);
  const bestMonitor = c.bestMonitor ?? 'val_loss';
  if (!is.oneOf(bestMonitor, MONITORS)) throw invalidOption('bestMonitor', `one of ${MONITORS.join(', ')}`, bestMonitor, Kind);
  if (c.csvLog !== undefined && !is.string(c.csvLog)) throw invalidOption('csvLog', 'a file path', c.csvLog, Kind);
  let reduceOnPlateau: Required<Plateau> | undefined;
  if (c.reduceOnPlateau !== undefined) {
    const p = c.reduceOnPlateau;
    reduceOnPlateau = {
      monitor: p.monitor ?? 'val_loss',
      factor: p.factor ?? 0.1,
      patience: p.patience ?? 10,
      minDelta: p.minDelta ?? 1e-4,
      cooldown: p.cooldown ?? 0,
      minLearningRate: p.minLearningRate ?? 0,
    };
    const r = reduceOnPlateau;
    if (!is.oneOf(r.monitor, MONITORS)) throw invalidOption('reduceOnPlateau.monitor', `one of ${MONITORS.join(', ')}`, r.monitor, Kind);
    if (!(is.number(r.factor) && r.factor > 0 && r.factor < 1)) throw invalidOption('reduceOnPlateau.factor', 'a number in (0, 1)', r.factor, Kind);
    for (const key of ['patience', 'cooldown'] as const)
      if (!is.nonNegativeInteger(r[key])) throw invalidOption(`reduceOnPlateau.${key}`, 'a non-negative integer', r[key], Kind);
    for (const key of ['minDelta', 'minLearningRate'] as const)
      if (!(is.number(r[key]) && r[key] >= 0)) throw invalidOption(`reduceOnPlateau.${key}`, 'a number ≥ 0', r[key], Kind);
  }
  return {
    schedule: schedule as Schedule,
    warmupEpochs,
    bestMonitor,
    ...(c.csvLog ? { csvLog: c.csvLog } : {}),
    ...(reduceOnPlateau ? { reduceOnPlateau } : {}),
  };
}

/**
 * The learning rate of each epoch: the schedule (after warm-up), scaled by every reduction
 * reduce-on-plateau has made. Ask `rateFor(epoch)` before an epoch, report it with `endEpoch`.
 *
 * @example
 * const rates = new LearningRates(1e-3, 10, { schedule: { kind: 'cosine' }, warmupEpochs: 1 });
 * rates.rateFor(0); // 1e-3 (the one warm-up epoch ends at the base rate)
 */
export class LearningRates {
  /** The controls as checked, Keras's defaults filled (the monitors trainers watch). */
  readonly controls: ResolvedControls;
  /** The rate reduce-on-plateau has set (Keras sets the optimizer's rate itself); null: none yet. */
  private reduced: number | null = null;
  private best: number;
  private wait = 0;
  private cooldownLeft = 0;

  constructor(
    private readonly learningRate: number,
    private readonly epochs: number,
    controls: TrainingControls | undefined,
    Kind: new (m: string) => Error = OptionError,
  ) {
    this.controls = resolveControls(controls, Kind);
    this.best = this.controls.reduceOnPlateau && upward(this.controls.reduceOnPlateau.monitor) ? -Infinity : Infinity;
  }

  /** The scheduled rate of `epoch` (0-based), before any reduction. */
  scheduled(epoch: number): number {
    const lr = this.learningRate;
    const warm = this.controls.warmupEpochs;
    if (epoch < warm) return (lr * (epoch + 1)) / warm;
    const t = epoch - warm;
    const s = this.controls.schedule;
    if (s.kind === 'step') return lr * s.factor ** Math.floor(t / s.every);
    if (s.kind === 'cosine') {
      const span = Math.max(1, this.epochs - warm);
      const min = s.minLearningRate ?? 0;
      return min + ((lr - min) * (1 + Math.cos((Math.PI * Math.min(t, span)) / span))) / 2;
    }
    return lr;
  }

  /** The rate `epoch` trains at. */
  rateFor(epoch: number): number {
    const scheduled = this.scheduled(epoch);
    return this.reduced === null ? scheduled : Math.min(scheduled, this.reduced);
  }

  /**
   * Reports an epoch's scores (trained at `rate`); returns the reduced rate when reduce-on-plateau
   * lowers it now, as Keras's ReduceLROnPlateau.on_epoch_end decides.
   */
  endEpoch(scores: EpochScores, rate: number): number | null {
    const p = this.controls.reduceOnPlateau;
    if (!p) return null;
    const current = scoreOf(scores, p.monitor, 'reduceOnPlateau.monitor');
    const inCooldown = () => this.cooldownLeft > 0;
    if (inCooldown()) {
      this.cooldownLeft--;
      this.wait = 0;
    }
    const improved = upward(p.monitor) ? current > this.best + p.minDelta : current < this.best - p.minDelta;
    if (improved) {
      this.best = current;
      this.wait = 0;
    } else if (!inCooldown()) {
      this.wait++;
      if (this.wait >= p.patience && Math.fround(rate) > Math.fround(p.minLearningRate)) {
        this.reduced = Math.max(rate * p.factor, p.minLearningRate);
        this.cooldownLeft = p.cooldown;
        this.wait = 0;
        return this.reduced;
      }
    }
    return null;
  }

  /** Replays a resumed run's epochs (with the rates they logged), restoring the plateau state. */
  replay(history: (EpochScores & { lr?: number })[]): void {
    history.forEach((h, e) => {
      this.endEpoch(h, h.lr ?? this.rateFor(e));
    });
  }
}

/** Best-only tracking of one metric, as ModelCheckpoint(save_best_only=True): strictly better counts. */
export class BestEpoch {
  value: number;
  epoch = -1;

  constructor(readonly monitor: Monitor) {
    this.value = upward(monitor) ? -Infinity : Infinity;
  }

  /** Whether `scores` beat the best so far (then they become it). */
  offer(epoch: number, scores: EpochScores): boolean {
    const current = scoreOf(scores, this.monitor, 'bestMonitor');
    if (!(upward(this.monitor) ? current > this.value : current < this.value)) return false;
    this.value = current;
    this.epoch = epoch;
    return true;
  }
}

const CSV_COLUMNS = ['epoch', 'loss', 'acc', 'val_loss', 'val_acc', 'lr'] as const;

/**
 * Keras's CSVLogger: a header, then a row per epoch. A resumed run appends after the rows of the
 * epochs it kept (rows of later epochs, from a run killed after its checkpoint, are dropped).
 */
export class CsvLog {
  constructor(
    private readonly file: string,
    resumedEpochs: number,
  ) {
    mkdirSync(dirname(file), { recursive: true });
    const header = `${CSV_COLUMNS.join(',')}\n`;
    const kept =
      resumedEpochs > 0 && existsSync(file)
        ? readFileSync(file, 'utf8')
            .split('\n')
            .slice(1, 1 + resumedEpochs)
            .filter(Boolean)
        : [];
    writeFileSync(file, header + kept.map((l) => `${l}\n`).join(''));
  }

  write(epoch: number, scores: EpochScores, lr: number): void {
    const cell = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '' : String(v));
    appendFileSync(this.file, `${[epoch, cell(scores.loss), cell(scores.acc), cell(scores.valLoss), cell(scores.valAcc), cell(lr)].join(',')}\n`);
  }
}

/** The keys of TrainingControls, so that a job or a stage passes on exactly the controls it was given. */
export const CONTROL_KEYS = [
  'schedule',
  'warmupEpochs',
  'reduceOnPlateau',
  'csvLog',
  'bestMonitor',
  'classWeight',
] as const satisfies readonly (keyof TrainingControls)[];

/** The training controls `o` holds (keys left undefined stay out). */
export function controlsOf(o: TrainingControls): TrainingControls {
  return Object.fromEntries(CONTROL_KEYS.filter((k) => o[k] !== undefined).map((k) => [k, o[k]])) as TrainingControls;
}
