/**
 * The run options as flags. Each flag's help, valid values and default are the option's own, from
 * the pipeline's schema and RUN_DEFAULTS; this file only spells them. The stage commands take the
 * options they share with `run` from here, so that a value valid on one command is valid on all.
 */
import { CONTROL_KEYS, controlsOf, RUN_DEFAULTS, type RunConfig, readRunFlag, runOptionHelp, type TrainingControls } from '@featherstack/pipeline';
import { type Command, InvalidArgumentError, Option } from 'commander';
import * as parse from './parsers.js';

export type RunKey = keyof RunConfig;

interface Spelling {
  /** The value's placeholder; none: a switch. */
  value?: string;
  /** On by default: the flag is `--no-…`. */
  negate?: true;
  /** A value flag that `--no-…` also turns off (the schema reads false as off). */
  alsoNo?: true;
  /** Where the text is not a plain number, string or choice. */
  read?: (text: string) => unknown;
  /** How --help names the default, where its value would not say it. */
  defaultIs?: string;
}

/** Every run option's spelling; the type makes a new option without a flag an error. */
const SPELLING: Record<RunKey, Spelling> = {
  data: { value: '<dir>' },
  out: { value: '<dir>' },
  imageSize: { value: '<HxW>', read: parse.size },
  colorMode: { value: '<mode>' },
  batchSize: { value: '<n>' },
  baseEpochs: { value: '<n>' },
  headEpochs: { value: '<n>' },
  workers: { value: '<n>' },
  tfThreads: { value: '<n>' },
  replicas: { value: '<n>' },
  engine: { value: '<engine>' },
  precision: { value: '<p>' },
  seed: { value: '<n>' },
  resume: {},
  validateBase: { negate: true },
  onError: { value: '<mode>' },
  tensorboard: { value: '<dir>' },
  cache: { value: '<format>', read: parse.cacheFormat, alsoNo: true },
  cacheBudget: { value: '<size>', read: parse.bytes('--cache-budget') },
  shuffleBuffer: { value: '<n>' },
  augment: { value: '<spec>', read: parse.augment, defaultIs: "the seed's" },
  base: { value: '<file>' },
  fineTune: { value: '<all|n>', read: parse.fineTune },
  fineTuneEpochs: { value: '<n>' },
  bnTrain: {},
  retrainHead: {},
  fineTuneLr: { value: '<lr>' },
  featureLayer: { value: '<name>' },
  pooling: { value: '<mode>' },
  preprocess: { value: '<mode>' },
  schedule: { value: '<spec>', read: parse.schedule },
  warmupEpochs: { value: '<n>' },
  reduceOnPlateau: { value: '<patience[:factor]>', read: parse.plateau },
  keepBest: {},
  bestMonitor: { value: '<metric>' },
  classWeight: { value: '<balanced|name=w,…>', read: parse.classWeight },
};

/** The engine's options, the same on run, train-base and extract. */
export const ENGINE_KEYS = ['replicas', 'tfThreads', 'engine', 'precision'] as const satisfies readonly RunKey[];

export const flagOf = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * Adds run option `key` to `command` as its flag. A stage command may name it differently
 * (`--epochs` for baseEpochs), say what it means there, or drop the default (`fallback: null`:
 * extract's image size is the model's input), but the values it accepts are the schema's.
 *
 * @example
 * runFlag(program.command('train-base'), 'baseEpochs', { flag: '--epochs' });
 */
export function runFlag(command: Command, key: RunKey, o: { flag?: string; help?: string; fallback?: unknown } = {}): Command {
  const spelling = SPELLING[key];
  const flag = o.flag ?? flagOf(key);
  const option = new Option(spelling.negate ? `--no-${flag.slice(2)}` : spelling.value ? `${flag} ${spelling.value}` : flag, o.help ?? runOptionHelp(key));
  if (spelling.value) option.argParser(spelling.read ?? schemaReader(key, flag));
  const fallback = 'fallback' in o ? o.fallback : (RUN_DEFAULTS as Partial<Record<RunKey, unknown>>)[key];
  if (fallback !== undefined && fallback !== null && !spelling.negate && spelling.value) option.default(fallback, spelling.defaultIs);
  command.addOption(option);
  if (spelling.alsoNo) command.addOption(new Option(`--no-${flag.slice(2)}`, `the same as ${flag} off`));
  return command;
}

/** Every run option as its flag, in the schema's order. */
export function runFlags(command: Command): Command {
  for (const key of Object.keys(SPELLING) as RunKey[]) runFlag(command, key);
  return command;
}

function schemaReader(key: RunKey, flag: string) {
  return (text: string): unknown => {
    try {
      return readRunFlag(key, text, flag);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}

/**
 * The training controls' flags on train-base and train-head: the run options among common's
 * CONTROL_KEYS, --keep-best, and --csv-log (a file of the stage's own; run writes one per phase).
 */
export function controlFlags(command: Command): Command {
  for (const key of CONTROL_KEYS) if (key !== 'csvLog') runFlag(command, key);
  runFlag(command, 'keepBest');
  return command.option('--csv-log <file>', "a CSV file with a row per epoch (epoch, loss, acc, val_loss, val_acc, lr), as Keras's CSVLogger");
}

/** Those flags' values as the API takes them (absent ones stay absent). */
export function controlsFrom(opts: TrainingControls & { keepBest?: boolean }): TrainingControls & { keepBest?: true } {
  return { ...controlsOf(opts), ...(opts.keepBest ? { keepBest: true } : {}) };
}
