/**
 * What a run leaves besides its model: the report (report.html, its charts and augmentation
 * samples) and the throughput of each stage, from the stage clock the workflow keeps.
 */
import { availableParallelism } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { EpochLog, ExtractResult } from '@featherstack/core';
import type { Evaluation, HeadResult } from '@featherstack/head';
import type { ImageFlow, ImagePool } from '@featherstack/images';
import { augmentationGrid, type WrittenReport, writeReport } from '@featherstack/report';
import { type ThreadPlan, tensorflowReport } from '@featherstack/tensorflow';
import type { ImageSettings } from './flows.js';
import type { ResolvedRunOptions } from './options.js';

/** What the report needs of the run: its options, where it writes, its clock, plan and skipped images. */
export interface RunContext {
  o: ResolvedRunOptions;
  data: string;
  out: string;
  clock: Clock;
  plan: ThreadPlan;
  skipped: Map<string, string>;
}

/** Stage clock: named marks instead of t0…t5. */
export class Clock {
  private readonly marks = new Map<string, number>([['start', performance.now()]]);
  mark(name: string): void {
    this.marks.set(name, performance.now());
  }
  has(name: string): boolean {
    return this.marks.has(name);
  }
  /** Seconds from mark `from` to mark `to`. */
  seconds(from: string, to: string): number {
    return (this.marks.get(to)! - this.marks.get(from)!) / 1000;
  }
}

/** The mark ending a run's work before its report: the fresh head's, the re-extraction's (fine-tuned) or the head's. */
export function lastStage(clock: Clock): 'retrain-head' | 're-extract' | 'head' {
  return clock.has('retrain-head') ? 'retrain-head' : clock.has('re-extract') ? 're-extract' : 'head';
}

/** A stage's throughput, as the report and the result give it. */
export interface Stage {
  stage: string;
  seconds: number;
  items: number;
  unit: string;
}

export interface Features {
  files: { train: string; val: string };
  train: ExtractResult;
  val: ExtractResult;
}

/** Throughput from the epochs' own clocks, so a resumed run reports its training, not the restore. */
export function stagesOf(clock: Clock, train: ImageFlow, history: EpochLog[], features: Features, head: HeadResult, tuned = false): Stage[] {
  const baseSeconds = history.reduce((a, e) => a + e.seconds, 0);
  const rows = features.train.rows + features.val.rows;
  return [
    // Fine-tuned: `history` is the second phase's, and the features the ones extracted after it.
    { stage: tuned ? 'fine-tuning (base and head)' : 'base training', seconds: baseSeconds, items: history.length * train.samples, unit: 'images' },
    { stage: tuned ? 'feature extraction (frozen base)' : 'feature extraction', seconds: clock.seconds('base', 'extract'), items: rows, unit: 'images' },
    { stage: 'head training', seconds: clock.seconds('extract', 'head'), items: features.train.rows * head.history.length, unit: 'rows' },
    ...(tuned ? [{ stage: 'feature extraction (fine-tuned base)', seconds: clock.seconds('fine-tune', 're-extract'), items: rows, unit: 'images' }] : []),
    ...(clock.has('retrain-head')
      ? [
          {
            stage: 'head training again (fine-tuned features)',
            seconds: clock.seconds('re-extract', 'retrain-head'),
            items: features.train.rows * head.history.length,
            unit: 'rows',
          },
        ]
      : []),
  ];
}

/** Files of the flow's samples `picked`: their own paths, or for a pack, copies of their bytes under out/report-samples. */
async function sampleFiles(out: string, train: ImageFlow, picked: number[]): Promise<string[]> {
  const paths = picked.map((i) => train.filenames[i]!);
  if (!train.packDir) return paths.map((p) => join(train.root, p));
  const dir = join(out, 'report-samples');
  await mkdir(dir, { recursive: true });
  const bytes = await train.encodedImages(picked);
  return Promise.all(
    paths.map(async (p, k) => {
      const file = join(dir, `${k}-${basename(p)}`);
      await writeFile(file, bytes[k]!);
      return file;
    }),
  );
}

export async function writeRunReport(
  run: RunContext,
  evaluation: Evaluation,
  p: { head: HeadResult; train: ImageFlow; history: EpochLog[]; features: Features; pool: ImagePool; settings: ImageSettings },
): Promise<{ report: WrittenReport; tensorflow: ReturnType<typeof tensorflowReport>; stages: Stage[] }> {
  const { o, data, clock } = run;
  const { train, history, features, head } = p;
  // One image of each class (up to 8) through the training augmentation, beside its plain self;
  // images skipped in training are not shown.
  const path = (i: number) => join(train.root, train.filenames[i]!);
  const firstOfClass = train.classNames
    .slice(0, 8)
    .map((_, c) => train.classes.findIndex((k, i) => k === c && !run.skipped.has(path(i))))
    .filter((i) => i >= 0);
  // A frozen imported base trains on nothing augmented: no samples to show.
  const samples = o.base
    ? undefined
    : await augmentationGrid({
        files: await sampleFiles(run.out, train, firstOfClass),
        augment: o.augment,
        targetSize: p.settings.imageSize,
        colorMode: p.settings.colorMode,
        pool: p.pool,
        seed: o.seed,
      });
  const tfReport = tensorflowReport();
  const tuned = o.base !== undefined && o.fineTune !== undefined;
  const stages = stagesOf(clock, train, history, features, head, tuned);
  const [h, w] = p.settings.imageSize;
  const s = (a: string, b: string) => clock.seconds(a, b).toFixed(1);
  const report = await writeReport(join(run.out, 'report.html'), {
    title: `featherstack run — ${data}`,
    facts: [
      ['dataset', data],
      ['images', `${train.samples} train / ${features.val.rows} val, ${train.classNames.length} classes, ${h}×${w} ${p.settings.colorMode}`],
      o.base
        ? [
            'base',
            `${o.base}, ${tuned ? `fine-tuned (${o.fineTune === 'all' ? 'all layers' : `top ${o.fineTune} layers`}, BatchNormalization ${o.bnTrain ? 'trained' : 'frozen'}) for ${history.length} epochs at ${o.fineTuneLr} after` : 'frozen'} (features from '${features.train.featureLayer}', pooling ${features.train.pooling}, preprocess ${o.preprocess}); head ${head.history.length} epochs`,
          ]
        : ['epochs', `base ${history.length}, head ${head.history.length} (batch ${o.batchSize})`],
      ['feature dimension', String(features.train.dimension)],
      [
        'seconds (wall)',
        tuned
          ? `${s('start', lastStage(clock))} in all: setup ${s('start', 'setup')}, extraction ${s('base', 'extract')}, head ${s('extract', 'head')}, fine-tuning ${s('head', 'fine-tune')}, extraction again ${s('fine-tune', 're-extract')}${clock.has('retrain-head') ? `, head again ${s('re-extract', 'retrain-head')}` : ''}`
          : `${s('start', 'head')} to the end of head training: setup ${s('start', 'setup')}, base ${s('setup', 'base')}, extraction ${s('base', 'extract')}, head ${s('extract', 'head')}`,
      ],
      ['augmentation', JSON.stringify(o.augment)],
      [
        'machine',
        `${availableParallelism()} cores, ${train.workers} decode workers, TensorFlow ${tfReport.tensorflowVersion} (${tfReport.backend}), ${history.at(-1)?.engine ?? 'graph'} engine on ${run.plan.replicas} replica(s) × ${run.plan.threadsPerReplica} thread(s)`,
      ],
    ],
    base: history,
    head: head.history,
    evaluation,
    stages,
    stagesNote:
      "Base training from the epochs' own clocks (all epochs, also those a resumed run restored); extraction and head training are the wall times of their stages (the head's includes reading the feature files and scoring every epoch).",
    ...(samples
      ? {
          samples: {
            png: samples,
            caption:
              'Each row: one training image of a class, first without augmentation, then six draws of the training augmentation (as the base sees them; each tile stretched to full contrast).',
          },
        }
      : {}),
  });
  return { report, tensorflow: tfReport, stages };
}
