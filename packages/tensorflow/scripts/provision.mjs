#!/usr/bin/env node
// Provisions native TensorFlow for @tensorflow/tfjs-node.
//
// tfjs-node's own install script downloads libtensorflow (and a prebuilt binding) from Google's
// storage host. Where that host is unreachable the script fails and tfjs-node cannot load, and the
// pure-JS fallback is ~1000x too slow to train CNNs. So this script, in order:
//   1. keeps a binding that already loads (a second install takes well under a second);
//   2. restores a cached build from $FEATHERSTACK_CACHE (default ~/.cache/featherstack);
//   3. runs tfjs-node's normal download;
//   4. takes libtensorflow from the tensorflow-cpu Python wheel (pip download, any configured index)
//      and builds tfjs-node's binding from source with node-pre-gyp/node-gyp.
// Every path ends with TensorFlow's C API headers in deps/include (cached with the libraries):
// featherstack's own native addon (scripts/build-native.mjs) compiles against them.
// Steps 3 and 4 store their result in the cache. If nothing works it fails naming both remedies.
//
// Plain Node.js with no dependencies: it runs before anything is built.

import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TFJS_NODE_VERSION = '4.22.0';
const WHEEL_TF_VERSION = process.env.FEATHERSTACK_TENSORFLOW_WHEEL_VERSION ?? '2.21.0';
const NAPI_DIR = 'napi-v8';
export const MARKER = 'featherstack-provision.json';

const here = dirname(fileURLToPath(import.meta.url));

function log(message) {
  if (!process.env.FEATHERSTACK_QUIET) process.stderr.write(`[featherstack provision] ${message}\n`);
}

export function cacheRoot() {
  const base = process.env.FEATHERSTACK_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'featherstack');
  return resolve(base);
}

function tfjsNodeDir() {
  const require = createRequire(join(here, '..', 'package.json'));
  return dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
}

function bindingPath(pkgDir) {
  return join(pkgDir, 'lib', NAPI_DIR, 'tfjs_binding.node');
}

/** Loads the binding in a child process: a failed dlopen must not poison this process. */
function bindingLoads(pkgDir) {
  const file = bindingPath(pkgDir);
  if (!existsSync(file)) return { ok: false, reason: `${file} does not exist` };
  const probe = spawnSync(process.execPath, ['-e', `const b=require(${JSON.stringify(file)});process.stdout.write(String(b.TF_Version))`], {
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
  });
  if (probe.status === 0) return { ok: true, tensorflowVersion: probe.stdout.trim() };
  return { ok: false, reason: (probe.stderr || `exit ${probe.status}`).trim().split('\n').slice(0, 3).join(' ') };
}

function run(cmd, args, options = {}) {
  log(`$ ${cmd} ${args.map((a) => a.split('\n')[0]).join(' ')}`);
  const result = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...options });
  if (result.error) return { ok: false, output: String(result.error.message) };
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

function writeMarker(pkgDir, info) {
  writeFileSync(join(pkgDir, MARKER), `${JSON.stringify(info, null, 2)}\n`);
}

/** Points deps/lib and lib/napi-v8 of the installed tfjs-node at a cached build. */
function linkFromCache(pkgDir, entry) {
  const meta = JSON.parse(readFileSync(join(entry, 'complete.json'), 'utf8'));
  const depsLib = join(pkgDir, 'deps', 'lib');
  rmSync(depsLib, { recursive: true, force: true });
  mkdirSync(depsLib, { recursive: true });
  // The binding's rpath is $ORIGIN/../../deps/lib; symlinks keep the ~850 MB of libraries in one
  // place however many checkouts use them.
  for (const name of readdirSync(join(entry, 'lib'))) {
    symlinkSync(join(entry, 'lib', name), join(depsLib, name));
  }
  // The C API headers, which featherstack's own native addon compiles against.
  const depsInclude = join(pkgDir, 'deps', 'include');
  rmSync(depsInclude, { recursive: true, force: true });
  if (existsSync(join(entry, 'include'))) symlinkSync(join(entry, 'include'), depsInclude);
  mkdirSync(join(pkgDir, 'lib', NAPI_DIR), { recursive: true });
  copyFileSync(join(entry, 'tfjs_binding.node'), bindingPath(pkgDir));
  writeMarker(pkgDir, { ...meta, cache: entry });
  return meta;
}

/** rename(), or copy + unlink where source and cache are on different filesystems. */
function moveFile(from, to) {
  try {
    renameSync(from, to);
  } catch (error) {
    if (error.code !== 'EXDEV') throw error;
    copyFileSync(from, to);
    rmSync(from);
  }
}

/**
 * Moves a fresh build (deps/lib and the binding) into the cache, then points the package at it:
 * the ~850 MB of libraries are written once, not copied and then deleted.
 */
function saveToCache(pkgDir, entry, meta) {
  const staging = `${entry}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'lib'), { recursive: true });
  const depsLib = join(pkgDir, 'deps', 'lib');
  for (const name of readdirSync(depsLib)) {
    const from = join(depsLib, name);
    const to = join(staging, 'lib', name);
    // Keep alias symlinks (libtensorflow.so -> libtensorflow_cc.so.2) as links, not 800 MB copies.
    if (lstatSync(from).isSymbolicLink()) symlinkSync(readlinkSync(from), to);
    else moveFile(from, to);
  }
  const depsInclude = join(pkgDir, 'deps', 'include');
  if (existsSync(depsInclude)) cpSync(depsInclude, join(staging, 'include'), { recursive: true });
  copyFileSync(bindingPath(pkgDir), join(staging, 'tfjs_binding.node'));
  writeFileSync(join(staging, 'complete.json'), `${JSON.stringify(meta, null, 2)}\n`);
  rmSync(entry, { recursive: true, force: true });
  renameSync(staging, entry);
  return linkFromCache(pkgDir, entry);
}

function tryDownload(pkgDir) {
  if (process.env.FEATHERSTACK_SKIP_DOWNLOAD === '1') return { ok: false, reason: 'skipped (FEATHERSTACK_SKIP_DOWNLOAD=1)' };
  log('trying tfjs-node download of libtensorflow');
  const res = run(process.execPath, [join(pkgDir, 'scripts', 'install.js')], {
    cwd: pkgDir,
    timeout: 600_000,
    env: { ...process.env, PATH: `${join(pkgDir, '..', '..', '.bin')}:${process.env.PATH}` },
  });
  if (!res.ok) {
    const lines = res.output.trim().split('\n');
    return { ok: false, reason: (lines.find((l) => /Error/.test(l)) ?? lines.at(-1) ?? 'unknown error').trim() };
  }
  const check = bindingLoads(pkgDir);
  return check.ok ? { ok: true, tensorflowVersion: check.tensorflowVersion } : { ok: false, reason: check.reason };
}

function nodeHeadersDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  // Node installed from a distribution package ships its headers under <prefix>/include/node.
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  return undefined;
}

function findPython() {
  for (const candidate of [process.env.PYTHON, 'python3', 'python']) {
    if (candidate && run(candidate, ['-m', 'pip', '--version']).ok) return candidate;
  }
  return undefined;
}

const HEADER_PREFIXES = [
  'tensorflow/include/tensorflow/c/',
  'tensorflow/include/xla/tsl/c/',
  'tensorflow/include/tsl/platform/ctstring',
  'tensorflow/include/tensorflow/core/platform/ctstring',
];

/**
 * Downloads the tensorflow-cpu wheel into `work` and extracts the C API headers (and, unless
 * `headersOnly`, the two shared libraries) under work/tensorflow; the ~270 MB wheel is deleted.
 */
function fromWheel(python, work, headersOnly) {
  const dl = run(python, [
    '-m',
    'pip',
    'download',
    `tensorflow-cpu==${WHEEL_TF_VERSION}`,
    '--no-deps',
    '--only-binary=:all:',
    '--disable-pip-version-check',
    '-d',
    work,
  ]);
  const wheel = readdirSync(work).find((f) => f.endsWith('.whl'));
  if (!dl.ok || !wheel) {
    return { ok: false, reason: `pip download tensorflow-cpu==${WHEEL_TF_VERSION} failed: ${dl.output.trim().split('\n').slice(-2).join(' ')}` };
  }
  const libraries = headersOnly ? [] : ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'];
  const extract = run(python, [
    '-c',
    [
      'import json, sys, zipfile',
      'z = zipfile.ZipFile(sys.argv[1])',
      'libs, prefixes = json.loads(sys.argv[3]), json.loads(sys.argv[4])',
      'want = lambda n: n in libs or any(n.startswith(p) for p in prefixes)',
      '[z.extract(n, sys.argv[2]) for n in z.namelist() if want(n)]',
    ].join('\n'),
    join(work, wheel),
    work,
    JSON.stringify(libraries),
    JSON.stringify(HEADER_PREFIXES),
  ]);
  rmSync(join(work, wheel), { force: true });
  if (!extract.ok) return { ok: false, reason: `could not extract ${wheel}: ${extract.output.trim()}` };
  return { ok: true };
}

/**
 * Makes sure deps/include holds the C API headers (featherstack's native addon compiles against
 * them). A cache entry written before the headers were kept gets them from the wheel once.
 */
function ensureHeaders(pkgDir, entry) {
  const depsInclude = join(pkgDir, 'deps', 'include');
  if (existsSync(join(depsInclude, 'tensorflow', 'c', 'c_api.h'))) return;
  const target = entry ? join(entry, 'include') : depsInclude;
  if (!existsSync(join(target, 'tensorflow', 'c', 'c_api.h'))) {
    const python = findPython();
    if (!python) throw new Error(`${target} has no TensorFlow C API headers and no python3 with pip is there to fetch them (set PYTHON)`);
    log(`${target} has no TensorFlow C API headers; taking them from the tensorflow-cpu ${WHEEL_TF_VERSION} wheel`);
    const work = join(cacheRoot(), `headers-${WHEEL_TF_VERSION}.partial-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      const got = fromWheel(python, work, true);
      if (!got.ok) throw new Error(`TensorFlow C API headers for ${target}: ${got.reason}`);
      rmSync(target, { recursive: true, force: true });
      renameSync(join(work, 'tensorflow', 'include'), target);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  if (target !== depsInclude) {
    rmSync(depsInclude, { recursive: true, force: true });
    symlinkSync(target, depsInclude);
  }
}

function tryWheel(pkgDir) {
  const python = findPython();
  if (!python) return { ok: false, reason: 'no python3 with pip found (set PYTHON)' };
  const work = join(cacheRoot(), `wheel-${WHEEL_TF_VERSION}.partial-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const got = fromWheel(python, work, false);
    if (!got.ok) return got;

    const tfDir = join(work, 'tensorflow');
    const depsLib = join(pkgDir, 'deps', 'lib');
    const depsInclude = join(pkgDir, 'deps', 'include');
    rmSync(join(pkgDir, 'deps'), { recursive: true, force: true });
    mkdirSync(depsLib, { recursive: true });
    renameSync(join(tfDir, 'include'), depsInclude);
    // The binding links -ltensorflow -ltensorflow_framework and records the sonames
    // (libtensorflow_cc.so.2, libtensorflow_framework.so.2) as NEEDED: provide both spellings.
    renameSync(join(tfDir, 'libtensorflow_cc.so.2'), join(depsLib, 'libtensorflow_cc.so.2'));
    renameSync(join(tfDir, 'libtensorflow_framework.so.2'), join(depsLib, 'libtensorflow_framework.so.2'));
    symlinkSync('libtensorflow_cc.so.2', join(depsLib, 'libtensorflow.so'));
    symlinkSync('libtensorflow_framework.so.2', join(depsLib, 'libtensorflow_framework.so'));
    // tfjs-node's install.js skips its download when this file exists.
    symlinkSync('libtensorflow_cc.so.2', join(depsLib, 'libtensorflow.so.2.9.1'));

    const nodedir = nodeHeadersDir();
    const preGyp = createRequire(join(pkgDir, 'package.json')).resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp');
    log('building the tfjs-node binding against the wheel (about a minute)');
    const build = run(process.execPath, [preGyp, 'install', '--build-from-source'], {
      cwd: pkgDir,
      env: { ...process.env, ...(nodedir ? { npm_config_nodedir: nodedir } : {}) },
    });
    if (!build.ok) {
      const tail = build.output
        .split('\n')
        .filter((l) => /error|ERR!/i.test(l))
        .slice(0, 6)
        .join('\n');
      return { ok: false, reason: `building the binding failed:\n${tail}` };
    }
    const check = bindingLoads(pkgDir);
    return check.ok ? { ok: true, tensorflowVersion: check.tensorflowVersion } : { ok: false, reason: check.reason };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export function provision() {
  const pkgDir = tfjsNodeDir();
  const current = bindingLoads(pkgDir);
  if (current.ok && existsSync(join(pkgDir, MARKER))) {
    const marker = JSON.parse(readFileSync(join(pkgDir, MARKER), 'utf8'));
    ensureHeaders(pkgDir, marker.cache);
    log(`native TensorFlow ${current.tensorflowVersion} ready`);
    return marker;
  }
  if (current.ok) {
    const info = { provisionedFrom: 'download', tensorflowVersion: current.tensorflowVersion, tfjsNode: TFJS_NODE_VERSION };
    ensureHeaders(pkgDir, undefined);
    writeMarker(pkgDir, info);
    return info;
  }

  const cacheBase = join(cacheRoot(), `tfjs-node-${TFJS_NODE_VERSION}-${process.platform}-${process.arch}-${NAPI_DIR}`);
  for (const kind of ['download', `wheel-${WHEEL_TF_VERSION}`]) {
    const entry = `${cacheBase}-${kind}`;
    if (!existsSync(join(entry, 'complete.json'))) continue;
    const meta = linkFromCache(pkgDir, entry);
    const check = bindingLoads(pkgDir);
    if (check.ok) {
      ensureHeaders(pkgDir, entry);
      log(`native TensorFlow ${check.tensorflowVersion} restored from ${entry}`);
      return meta;
    }
    log(`cached build ${entry} does not load (${check.reason}); discarding it`);
    rmSync(entry, { recursive: true, force: true });
  }

  mkdirSync(cacheRoot(), { recursive: true });
  const download = tryDownload(pkgDir);
  if (download.ok) {
    const meta = { provisionedFrom: 'download', tensorflowVersion: download.tensorflowVersion, tfjsNode: TFJS_NODE_VERSION };
    saveToCache(pkgDir, `${cacheBase}-download`, meta);
    return meta;
  }
  log(`download failed (${download.reason}); building from the tensorflow-cpu wheel`);
  const wheel = tryWheel(pkgDir);
  if (wheel.ok) {
    const meta = {
      provisionedFrom: 'wheel',
      tensorflowVersion: wheel.tensorflowVersion,
      tfjsNode: TFJS_NODE_VERSION,
      wheel: `tensorflow-cpu==${WHEEL_TF_VERSION}`,
    };
    const entry = `${cacheBase}-wheel-${WHEEL_TF_VERSION}`;
    saveToCache(pkgDir, entry, meta);
    rmSync(join(pkgDir, 'build'), { recursive: true, force: true });
    return meta;
  }
  throw new Error(
    [
      'featherstack could not provision native TensorFlow for @tensorflow/tfjs-node.',
      `  download: ${download.reason}`,
      `  wheel:    ${wheel.reason}`,
      'Remedies: give this machine network access to storage.googleapis.com (tfjs-node downloads libtensorflow from there),',
      `or configure pip with an index that has tensorflow-cpu==${WHEEL_TF_VERSION} (python3 -m pip download tensorflow-cpu==${WHEEL_TF_VERSION} --no-deps must work).`,
    ].join('\n'),
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const info = provision();
    if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(info)}\n`);
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
