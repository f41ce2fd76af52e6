#!/usr/bin/env node
// Builds the package's JPEG decoder addon (native/jpeg.c, libjpeg-turbo called directly) with the
// system's C compiler. Run by the package's build and, for an installed package, by its install
// script. Without a compiler or libjpeg-turbo's headers (Debian: libjpeg62-turbo-dev) the package
// still works: JPEGs then decode through libvips (sharp), about 7× slower for a 500×375 photo, and
// `featherstack doctor` says so. So a failed build warns and exits 0; `--strict` makes it fail.
// Skipped when the addon is newer than its source and this script. Plain Node.js, no dependencies.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const source = join(pkg, 'native', 'jpeg.c');
const addon = join(pkg, 'native', 'build', 'featherstack_jpeg.node');
const strict = process.argv.includes('--strict');

function giveUp(message) {
  process.stderr.write(`[featherstack jpeg] ${message}\n`);
  process.stderr.write('[featherstack jpeg] JPEGs will decode through libvips (sharp) instead: the same pixels, about 7× slower\n');
  process.exit(strict ? 1 : 0);
}

const newest = Math.max(statSync(source).mtimeMs, statSync(fileURLToPath(import.meta.url)).mtimeMs);
if (existsSync(addon) && statSync(addon).mtimeMs > newest && !process.argv.includes('--force')) process.exit(0);

const prefix = process.env.npm_config_nodedir ?? resolve(dirname(process.execPath), '..');
const nodeInclude = join(prefix, 'include', 'node');
if (!existsSync(join(nodeInclude, 'node_api.h'))) giveUp(`Node's headers (node_api.h) are not in ${nodeInclude}; set npm_config_nodedir`);

mkdirSync(dirname(addon), { recursive: true });
const cc = process.env.CC ?? 'cc';
const args = ['-std=c11', '-O2', '-shared', '-fPIC', '-fvisibility=hidden', '-Wall', '-Werror', `-I${nodeInclude}`, source, '-o', addon, '-ljpeg'];
const result = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (result.error) giveUp(`${cc} could not run (${result.error.message}); install a C compiler (Debian: gcc)`);
if (result.status !== 0)
  giveUp(`${cc} failed to build ${source} (exit ${result.status}); is libjpeg-turbo's development package installed (Debian: libjpeg62-turbo-dev)?`);
process.stderr.write(`[featherstack jpeg] built ${addon}\n`);
