/** `featherstack doctor`: what this machine gives featherstack. */
import { availableParallelism, cpus, totalmem } from 'node:os';
import { planThreads, type TensorFlowReport, type ThreadPlan, tensorflowReport } from '@featherstack/tensorflow';
import sharp from 'sharp';

export interface DoctorReport extends TensorFlowReport {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  sharp: string;
  libvips: string;
  uvThreadpoolSize: number;
  /** How `run` shares the cores by default: trainer replicas × TensorFlow threads, decode workers. */
  plan: ThreadPlan;
}

export function doctor(): DoctorReport {
  const tf = tensorflowReport();
  return {
    ...tf,
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    sharp: sharp.versions.sharp ?? 'unknown',
    libvips: sharp.versions.vips,
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    plan: planThreads(),
  };
}
