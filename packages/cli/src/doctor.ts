/** `featherstack doctor`: what this machine gives featherstack. */
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { type JpegDecoderInfo, jpegDecoder, pixelCacheBudget } from '@featherstack/images';
import { RUN_DEFAULTS } from '@featherstack/pipeline';
import { planThreads, type TensorFlowReport, type ThreadPlan, tensorflowReport } from '@featherstack/tensorflow';
import sharp from 'sharp';

export interface DoctorReport extends TensorFlowReport {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  sharp: string;
  libvips: string;
  /** What decodes JPEGs in the decode workers: libjpeg-turbo directly, or libvips and why. */
  jpeg: JpegDecoderInfo;
  uvThreadpoolSize: number;
  /** How `run` shares the cores by default: trainer replicas × TensorFlow threads, decode workers. */
  plan: ThreadPlan;
  /**
   * The pixel cache `run` keeps by default (raw uint8 pixels under <out>/cache): where, the bytes free
   * on that filesystem and the budget it may take (--cache-budget overrides; a cache over it is not
   * written). A pack or tars as --data keep none.
   */
  pixelCache: { dir: string; freeBytes: number; budgetBytes: number };
}

export async function doctor(): Promise<DoctorReport> {
  const tf = tensorflowReport();
  const dir = join(RUN_DEFAULTS.out, 'cache');
  const { free, budget } = await pixelCacheBudget(dir);
  return {
    ...tf,
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    sharp: sharp.versions.sharp ?? 'unknown',
    libvips: sharp.versions.vips,
    jpeg: jpegDecoder(),
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    plan: planThreads(),
    pixelCache: { dir, freeBytes: free, budgetBytes: Math.floor(budget) },
  };
}
