/**
 * The thread plan: how a machine's cores are shared between data-parallel trainer replicas (each a
 * TensorFlow session with its own intra-op pool) and the image decode workers.
 *
 * Measured on a 2-core machine (seed CNN, batch 32, graph engine, benchmarks/training.mjs's grid):
 * at 224² one replica × 2 threads ran a step in ~290 ms against ~355 ms for 2 replicas × 1 thread
 * (each replica reads and updates its own copy of the 24M-parameter dense layer, so replicas
 * double the optimizer's memory traffic); at 28² both took ~5 ms. TensorFlow's intra-op scaling of
 * these convolutions falls off past a few threads, while replicas multiply the per-step fixed
 * costs; so the plan gives each replica up to 4 threads and adds replicas beyond that. Past 2 cores
 * this is a model, not a measurement: `featherstack bench scaling` measures a machine, and
 * the flags override the plan.
 */
import { availableParallelism } from 'node:os';
import { TensorFlowOptionError } from './errors.js';

export interface ThreadPlanOptions {
  cores?: number;
  replicas?: number;
  threadsPerReplica?: number;
  decodeWorkers?: number;
}

export interface ThreadPlan {
  cores: number;
  replicas: number;
  /** Intra-op threads of each replica. */
  threadsPerReplica: number;
  decodeWorkers: number;
  /** Threads TensorFlow runs while training (replicas × threads per replica). */
  trainingThreads: number;
  /** Where a value came from: the plan or an override. */
  source: { replicas: 'plan' | 'option'; threadsPerReplica: 'plan' | 'option'; decodeWorkers: 'plan' | 'option' };
  /** Warnings, e.g. more training threads than cores. */
  warnings: string[];
}

/** Most threads a replica gets before the plan adds replicas instead. */
export const THREADS_PER_REPLICA_CAP = 4;

function bounded(flag: string, value: unknown, max: number, why: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TensorFlowOptionError(`${flag} must be a positive integer, received ${JSON.stringify(value)}`);
  }
  if (value > max) throw new TensorFlowOptionError(`${flag} must be at most ${max} on this machine (${why}), received ${value}`);
  return value;
}

/**
 * The plan for this machine, with overrides checked: replicas and threads per replica at most the
 * core count each, decode workers at most 4 per core (each is a thread with its own buffers: a
 * thousand of them exhaust memory before they decode anything).
 *
 * @example
 * planThreads();                 // { cores: 16, replicas: 4, threadsPerReplica: 4, decodeWorkers: 16, … }
 * planThreads({ replicas: 2 });  // two replicas, threads shared out among them
 */
export function planThreads(options: ThreadPlanOptions = {}): ThreadPlan {
  const cores = options.cores ?? availableParallelism();
  const replicas =
    options.replicas === undefined ? undefined : bounded('replicas (--replicas)', options.replicas, cores, `${cores} cores: a replica needs a core`);
  const threads =
    options.threadsPerReplica === undefined ? undefined : bounded('threads per replica (--tf-threads)', options.threadsPerReplica, cores, `${cores} cores`);
  const workers =
    options.decodeWorkers === undefined ? undefined : bounded('decode workers (--workers)', options.decodeWorkers, 4 * cores, `4 per core on ${cores} cores`);
  const threadsPerReplica = threads ?? Math.max(1, Math.min(THREADS_PER_REPLICA_CAP, Math.floor(cores / (replicas ?? 1))));
  const plannedReplicas = replicas ?? Math.max(1, Math.floor(cores / threadsPerReplica));
  const decodeWorkers = workers ?? cores;
  const trainingThreads = plannedReplicas * threadsPerReplica;
  const warnings: string[] = [];
  if (trainingThreads > cores)
    warnings.push(
      `${plannedReplicas} replicas × ${threadsPerReplica} threads = ${trainingThreads} TensorFlow threads on ${cores} cores: oversubscribed, steps will slow down`,
    );
  return {
    cores,
    replicas: plannedReplicas,
    threadsPerReplica,
    decodeWorkers,
    trainingThreads,
    source: { replicas: replicas ? 'option' : 'plan', threadsPerReplica: threads ? 'option' : 'plan', decodeWorkers: workers ? 'option' : 'plan' },
    warnings,
  };
}

/**
 * The layout for extraction (inference: no gradients to exchange between replicas): one
 * TensorFlow thread per replica and a replica per core, unless replicas or threads are given.
 * Measured on MobileNetV2 at 224² on 2 cores, same files, interleaved: 2 replicas × 1 thread
 * extracted 139–143 images/s, 1 replica × 2 threads 103–127 (TensorFlow's intra-op threads keep
 * only part of a second core busy on depthwise convolutions at these batch sizes).
 *
 * @example
 * planExtraction();                 // on 16 cores: { replicas: 16, threadsPerReplica: 1, … }
 * planExtraction({ replicas: 2 });  // as planThreads({ replicas: 2 })
 */
export function planExtraction(options: ThreadPlanOptions = {}): ThreadPlan {
  return planThreads(options.replicas === undefined && options.threadsPerReplica === undefined ? { ...options, threadsPerReplica: 1 } : options);
}
