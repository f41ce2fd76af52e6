/** `featherstack doctor`: native TensorFlow, the thread plan, cores, libvips and the JPEG decoder. */
import type { Command } from 'commander';
import { doctor } from '../doctor.js';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('report native TensorFlow, cores, sharp/libvips versions and the JPEG decoder')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const report = await doctor();
      if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else for (const [k, v] of Object.entries(report)) process.stdout.write(`${k.padEnd(18)} ${typeof v === 'object' ? JSON.stringify(v) : v}\n`);
    });
}
