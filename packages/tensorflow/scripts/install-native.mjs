#!/usr/bin/env node
// Makes an installed @featherstack/tensorflow ready to use: provisions native TensorFlow for
// @tensorflow/tfjs-node (provision.mjs), builds featherstack's session addon against it
// (build-native.mjs), then loads both through the package's own entry point to prove that the
// backend is native 'tensorflow'. It runs two ways:
//   - as this package's `preinstall` script, when npm installs it as a dependency. npm (7 and
//     later) unpacks the whole tree first, then runs every package's preinstall, then links bins,
//     then runs every install script. So this runs before tfjs-node's own install script, and
//     leaves deps/lib/libtensorflow.so.2.9.1 and lib/napi-v8/tfjs_binding.node in place: that
//     script then finds the library (it skips its download) and node-pre-gyp finds the binding
//     ("already installed"), and it succeeds without reaching storage.googleapis.com.
//   - as the `featherstack-provision` bin (`npx featherstack-provision`), after an install that
//     ran no scripts (`npm install --ignore-scripts`, or a package manager that runs dependencies'
//     scripts in dependency order or not at all).
// Inside the featherstack repository (a workspace package, not under node_modules) the preinstall
// does nothing: scripts/bootstrap.mjs provisions and the package's build compiles the addon.
// If anything fails it exits non-zero with the reason, so the install fails instead of leaving a
// tfjs-node that would fall back to the pure-JS backend.
//
// Plain Node.js with no dependencies of its own, like provision.mjs.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { provision } from './provision.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');

function log(message) {
  process.stderr.write(`[featherstack install] ${message}\n`);
}

const asPreinstall = process.env.npm_lifecycle_event === 'preinstall';

function fail(message) {
  log(message);
  // A failed preinstall makes npm roll the whole install back, so the remedy is to install again.
  const again = asPreinstall ? 'run the install again' : 'run `npx featherstack-provision` again';
  log(`native TensorFlow is not ready; after fixing the cause, ${again} (see the README of @featherstack/tensorflow, "Installing outside this repository")`);
  process.exit(1);
}

if (asPreinstall && !pkg.split(sep).includes('node_modules')) {
  log('inside a source checkout: skipped (scripts/bootstrap.mjs provisions, `npm run build` builds the addon)');
  process.exit(0);
}

/**
 * npm links bins only after every preinstall has run, but tfjs-node's install script (which
 * provision.mjs runs first, for machines that can reach the download host) calls `node-pre-gyp` by
 * name. A one-file shim directory on PATH supplies it for the duration of this script.
 */
function nodePreGypShim() {
  const tfjsNode = dirname(createRequire(join(pkg, 'package.json')).resolve('@tensorflow/tfjs-node/package.json'));
  const preGyp = createRequire(join(tfjsNode, 'package.json')).resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp');
  const dir = mkdtempSync(join(tmpdir(), 'featherstack-bin-'));
  writeFileSync(join(dir, 'node-pre-gyp'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(preGyp)} "$@"\n`, { mode: 0o755 });
  return dir;
}

let shim;
let provisioned;
try {
  if (process.platform !== 'win32') {
    shim = nodePreGypShim();
    process.env.PATH = `${shim}${delimiter}${process.env.PATH ?? ''}`;
  }
  provisioned = provision();
} catch (error) {
  provisioned = error;
} finally {
  // Before any exit: process.exit() in fail() would skip a later `finally`.
  if (shim) rmSync(shim, { recursive: true, force: true });
}
if (provisioned instanceof Error) fail(provisioned.message);
log(`libtensorflow ${provisioned.tensorflowVersion} provisioned (${provisioned.provisionedFrom})`);

const build = spawnSync(process.execPath, [join(here, 'build-native.mjs')], { stdio: ['ignore', 'inherit', 'inherit'] });
if (build.status !== 0) fail(`building the native session addon failed (exit ${build.status ?? build.signal})`);

// The proof, in a child process (a failed dlopen must not take this one down): the package's own
// entry point loads tfjs-node, refuses any backend but native 'tensorflow', and opens the addon.
const entry = pathToFileURL(join(pkg, 'dist', 'index.js')).href;
const check = spawnSync(
  process.execPath,
  [
    '--input-type=module',
    '-e',
    `const t = await import(${JSON.stringify(entry)});` +
      'const r = t.tensorflowReport({ intraOpThreads: 1, interOpThreads: 1 });' +
      'const sum = new Float32Array(2); await t.sumInto(sum, [Float32Array.of(1, 2), Float32Array.of(3, 4)]);' +
      'process.stdout.write(JSON.stringify({ backend: r.backend, tensorflowVersion: r.tensorflowVersion, provisionedFrom: r.provisionedFrom, sum: [...sum] }));',
  ],
  { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } },
);
if (check.status !== 0) fail(`native TensorFlow does not load: ${(check.stderr || `exit ${check.status}`).trim().split('\n').slice(-3).join(' ')}`);
const report = JSON.parse(check.stdout);
if (report.sum.join() !== '4,6') fail(`the native session addon computed ${report.sum.join()} for 1,2 + 3,4`);
log(`ready: backend '${report.backend}', TensorFlow ${report.tensorflowVersion} (${report.provisionedFrom}), session addon built`);
