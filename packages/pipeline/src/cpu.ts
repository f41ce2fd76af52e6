/**
 * Where a run's CPU time goes: user and system time of the process, and each thread's time by
 * group, from /proc/self/task (Linux). Threads are sampled every 200 ms and kept by id, because
 * most of them (decode workers, TensorFlow's pools) end before the run does; at most the last
 * sample period of a thread that ended is missed, which is why the groups can sum to slightly
 * less than the process's total.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface CpuReport {
  userSeconds: number;
  systemSeconds: number;
  peakRssMB: number;
  /** CPU seconds by thread group (Linux only; empty elsewhere). */
  threads: { tensorflow: number; decode: number; javascript: number; other: number };
}

const TICK = 100; // USER_HZ on Linux

/** The group of a thread by its name. */
function groupOf(comm: string, tid: string): keyof CpuReport['threads'] {
  if (comm.startsWith('tf_') || comm === 'fs_session') return 'tensorflow';
  // sharp/libvips decode on libuv's pool and libvips's threads, driven by the decode worker threads.
  if (comm === 'libuv-worker' || comm.startsWith('libvips') || comm.startsWith('vips')) return 'decode';
  if (comm === 'node' && tid === String(process.pid)) return 'javascript';
  if (comm === 'node') return 'decode'; // worker threads: in a run, the decode pool's
  return 'other';
}

function sample(seen: Map<string, { group: keyof CpuReport['threads']; seconds: number }>): void {
  let tasks: string[];
  try {
    tasks = readdirSync('/proc/self/task');
  } catch {
    return;
  }
  for (const tid of tasks) {
    try {
      const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      seen.set(tid, { group: groupOf(comm, tid), seconds: (Number(fields[11]) + Number(fields[12])) / TICK });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
}

/** Starts sampling; `stop()` returns the report for the time since the start. */
export function cpuSampler(): { stop(): CpuReport } {
  const start = process.resourceUsage();
  const before = new Map<string, { group: keyof CpuReport['threads']; seconds: number }>();
  sample(before);
  const seen = new Map(before);
  const timer = setInterval(() => sample(seen), 200);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      sample(seen);
      const end = process.resourceUsage();
      const threads = { tensorflow: 0, decode: 0, javascript: 0, other: 0 };
      for (const [tid, t] of seen) threads[t.group] += t.seconds - (before.get(tid)?.seconds ?? 0);
      const round = (v: number) => Math.round(v * 10) / 10;
      return {
        userSeconds: round((end.userCPUTime - start.userCPUTime) / 1e6),
        systemSeconds: round((end.systemCPUTime - start.systemCPUTime) / 1e6),
        peakRssMB: Math.round(end.maxRSS / 1024),
        threads: { tensorflow: round(threads.tensorflow), decode: round(threads.decode), javascript: round(threads.javascript), other: round(threads.other) },
      };
    },
  };
}
