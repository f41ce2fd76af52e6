/** `featherstack inspect`: an Arrow feature file or pixel cache, summarised. */
import { inspect } from '@featherstack/pipeline';
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('summarise an Arrow feature file or pixel cache: rows, schema, metadata, class balance')
    .argument('<file>', 'an Arrow IPC file')
    .option('--json', 'print JSON')
    .action(async (file: string, opts) => {
      const report = await inspect(file);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
        return;
      }
      process.stdout.write(`${report.path}: ${report.kind}, ${report.rows} rows in ${report.recordBatches} record batches\n`);
      for (const f of report.schema) process.stdout.write(`  ${f.name}: ${f.type}${f.nullable ? ' (nullable)' : ''}\n`);
      for (const [k, v] of Object.entries(report.metadata)) process.stdout.write(`  ${k} = ${v.length > 100 ? `${v.slice(0, 97)}…` : v}\n`);
      if (report.classBalance) for (const [c, n] of Object.entries(report.classBalance)) process.stdout.write(`  class ${c}: ${n}\n`);
      if (report.failedSamples !== undefined) process.stdout.write(`  failed samples: ${report.failedSamples}\n`);
    });
}
