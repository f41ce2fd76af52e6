#!/usr/bin/env node
// Builds featherstack's native session addon (native/session.cc) against the libtensorflow that
// tfjs-node loads (its deps/), so that both share one TensorFlow runtime in the process. Run by
// the package's build after provisioning; skipped when the addon is newer than its source and the
// library. Plain Node.js with no dependencies, like provision.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const source = join(pkg, 'native', 'session.cc');
export const ADDON = join(pkg, 'native', 'build', 'featherstack_session.node');

function fail(message) {
  process.stderr.write(`[featherstack native] ${message}\n`);
  process.exit(1);
}

const require = createRequire(join(pkg, 'package.json'));
const tfjsNode = dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
const include = join(tfjsNode, 'deps', 'include');
const lib = join(tfjsNode, 'deps', 'lib');
if (!existsSync(join(include, 'tensorflow', 'c', 'c_api.h')) || !existsSync(join(lib, 'libtensorflow.so'))) {
  fail(`no libtensorflow headers and library in ${join(tfjsNode, 'deps')}: run scripts/provision.mjs first`);
}
const prefix = process.env.npm_config_nodedir ?? resolve(dirname(process.execPath), '..');
const nodeInclude = join(prefix, 'include', 'node');
if (!existsSync(join(nodeInclude, 'node_api.h'))) fail(`Node's headers (node_api.h) are not in ${nodeInclude}; set npm_config_nodedir`);

const newest = Math.max(
  statSync(source).mtimeMs,
  statSync(realpathSync(join(lib, 'libtensorflow.so'))).mtimeMs,
  statSync(fileURLToPath(import.meta.url)).mtimeMs,
);
if (existsSync(ADDON) && statSync(ADDON).mtimeMs > newest && !process.argv.includes('--force')) process.exit(0);

mkdirSync(dirname(ADDON), { recursive: true });
const args = [
  '-std=c++17',
  '-O3',
  '-shared',
  '-fPIC',
  '-fvisibility=hidden',
  '-Wall',
  `-I${nodeInclude}`,
  `-I${include}`,
  source,
  '-o',
  ADDON,
  `-L${lib}`,
  '-ltensorflow',
  '-ltensorflow_framework',
  `-Wl,-rpath,${lib}`,
];
const cxx = process.env.CXX ?? 'g++';
const result = spawnSync(cxx, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (result.error) fail(`${cxx} could not run (${result.error.message}); install a C++ compiler (Debian: g++)`);
if (result.status !== 0) fail(`${cxx} failed to build ${source} (exit ${result.status})`);
process.stderr.write(`[featherstack native] built ${ADDON}\n`);
