/** `featherstack run`: the whole stacked workflow, with progress bars, Ctrl-C and --config. */
import { join, resolve } from 'node:path';
import { applyConfig, readRunConfig, runConfigSchema, runWorkflow } from '@featherstack/pipeline';
import type { Command } from 'commander';
import { Progress } from '../render/progress.js';
import { runFlags } from '../run-flags.js';

export function register(program: Command): void {
  // Every run option's flag, help and default come from the pipeline's schema and RUN_DEFAULTS, which
  // config files and the API share.
  runFlags(program.command('run'))
    .description('run the stacked workflow: train the base CNN, extract features to Arrow files, train the head')
    .option('--config <file>', 'options from a YAML or JSON file (keys as the flags in camelCase); flags override it')
    .option('--json', 'print one JSON object instead of progress lines')
    .addHelpText(
      'after',
      `
  Exit codes: 0 done, 1 failed (the message names the file or option, e.g. an invalid config), 2 bad usage (unknown command or
    option, invalid flag value), 130 interrupted (Ctrl-C; resume with --resume).
  Outputs in --out: report.html (curves, confusion matrix, per-class metrics, throughput, augmented samples; PNGs in report/),
    features/*.arrow, model/ (for predict), evaluation.json, history.json, base-log.csv and head-log.csv (a row per epoch,
    with its learning rate), checkpoints/, cache/.
  Progress: bars on a terminal (NO_COLOR=1 for no colours), plain lines otherwise, nothing but errors with --json.
  Example config (run.yaml):
    data: my/images
    imageSize: [64, 64]
    colorMode: rgb
    baseEpochs: 10
    augment: { shearRange: 0.2, zoomRange: 0.2, horizontalFlip: true, rescale: 0.00392156862745098 }`,
    )
    .action(async (opts, command: Command) => {
      const fromConfig = new Set<string>();
      if (opts.config) {
        // The file fills every option not given on the command line.
        const config = await readRunConfig(opts.config);
        for (const key of Object.keys(config)) fromConfig.add(key);
        Object.assign(
          opts,
          applyConfig(opts, config, (key) => command.getOptionValueSource(key) === 'cli'),
        );
      }
      // Ctrl-C, and SIGTERM (docker stop, systemd, Kubernetes), stop cleanly: the base checkpoint and
      // the extraction journal stay, the --out lock is released, and we say how to resume.
      const controller = new AbortController();
      const interrupted = new Error('interrupted');
      let signalled: { name: NodeJS.Signals; code: number } = { name: 'SIGINT', code: 130 };
      for (const [name, code] of [
        ['SIGINT', 130],
        ['SIGTERM', 143],
      ] as const) {
        process.once(name, () => {
          signalled = { name, code };
          controller.abort(interrupted);
        });
      }
      // Bars on a terminal (base epochs, extractions, head), plain lines elsewhere; see progress.ts.
      const progress = new Progress({ json: opts.json });
      const log = (line: string) => progress.line(line);
      // The flags (over the config file) as the run options: the keys of the pipeline's one schema.
      // Flags left at their defaults stay out (the defaults are RUN_DEFAULTS either way), so that
      // an imported base can tell a given --image-size from none.
      const input = Object.fromEntries(
        Object.keys(runConfigSchema.shape)
          .filter((k) => opts[k] !== undefined && (command.getOptionValueSource(k) !== 'default' || fromConfig.has(k)))
          .map((k) => [k, opts[k]]),
      );
      let result: Awaited<ReturnType<typeof runWorkflow>>;
      try {
        result = await runWorkflow({
          ...input,
          signal: controller.signal,
          log,
          ...(progress.interactive ? { onBaseBatch: progress.base, onExtractBatch: (split, p) => progress.extract(split)(p) } : {}),
          onHeadEpoch: progress.head,
        });
      } catch (error) {
        progress.stop(); // give the terminal its line and cursor back before the message
        if (error !== interrupted) throw error;
        const out = resolve(opts.out);
        process.stderr.write(
          `featherstack: interrupted (${signalled.name}). Saved: the base checkpoint after the last finished epoch (${join(out, 'checkpoints', 'base')}), ` +
            `finished feature files and the journal of an interrupted extraction (${join(out, 'features')}), the pixel cache once its epoch completed.\n` +
            `Resume with: featherstack run --resume --out ${opts.out} (and the same options)\n`,
        );
        process.exit(signalled.code);
      }
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        const s = result.seconds;
        process.stdout.write(
          `validation accuracy: ${result.val_accuracy.toFixed(4)}\n` +
            `seconds: total ${s.total.toFixed(1)} (setup ${s.setup.toFixed(1)}, base ${s.base_train.toFixed(1)}, extract ${s.extract.toFixed(1)}, head ${s.head_train.toFixed(1)}), then evaluation, model and report ${s.report.toFixed(1)}\n` +
            `report: ${result.report.html}\n`,
        );
      }
    });
}
