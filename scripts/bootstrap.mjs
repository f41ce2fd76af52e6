#!/usr/bin/env node
// One entry point behind `npm start`, `npm test`, `npm run build` and `npm run bench`, so that a fresh
// clone needs nothing but Node.js and npm: it installs the workspace with pnpm (through npx when pnpm
// is not on PATH), provisions native TensorFlow, builds every package with turbo, then runs the verb.
// Plain Node.js with no dependencies: it runs before anything is installed.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM = 'pnpm@10.34.8';
const bin = (name) => join(root, 'node_modules', '.bin', name);

const env = {
  ...process.env,
  // turbo looks up the workspace's package manager (pnpm, a root devDependency) on PATH.
  PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
  TURBO_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
};

function step(title, cmd, args, options = {}) {
  process.stderr.write(`\n▶ ${title}\n`);
  const result = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env, ...options });
  if (result.error) {
    process.stderr.write(`✖ ${title}: ${result.error.message}\n`);
    process.exit(1);
  }
  if (result.status !== 0) {
    process.stderr.write(`✖ ${title} failed (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status ?? 1);
  }
}

function pnpmCommand() {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout.trim().startsWith('10.')) return ['pnpm', []];
  return ['npx', ['--yes', PNPM]];
}

/**
 * libjpeg-turbo's headers, for the images package's JPEG decoder addon (built by its install and
 * build scripts). Without them JPEGs decode through libvips, about 7× slower, and a test says so.
 */
function ensureJpegHeaders() {
  if (existsSync('/usr/include/jpeglib.h')) return;
  const result = aptInstall("install libjpeg-turbo's headers for the JPEG decoder", ['libjpeg62-turbo-dev']);
  if (result.status !== 0) process.stderr.write('✖ could not install libjpeg62-turbo-dev: JPEGs will decode through libvips (slower)\n');
}

function install() {
  ensureJpegHeaders();
  const [cmd, pre] = pnpmCommand();
  step('install dependencies (pnpm)', cmd, [...pre, 'install', '--frozen-lockfile', '--prefer-offline', '--reporter=append-only']);
  step('provision native TensorFlow', process.execPath, [join(root, 'packages', 'tensorflow', 'scripts', 'provision.mjs')]);
}

function build() {
  step('build packages (turbo)', bin('turbo'), ['run', 'build', '--output-logs=errors-only']);
}

/** apt-get install of Debian `packages`, as root or through sudo; retried once after `apt-get update`. */
function aptInstall(title, packages) {
  const root = process.getuid?.() === 0;
  const [cmd, pre] = root ? ['apt-get', []] : ['sudo', ['-n', 'apt-get']];
  const install = () => spawnSync(cmd, [...pre, 'install', '-y', ...packages], { stdio: 'inherit', env: { ...env, DEBIAN_FRONTEND: 'noninteractive' } });
  process.stderr.write(`\n▶ ${title} (apt-get install ${packages.join(' ')})\n`);
  let result = install();
  if (result.status !== 0 && !result.error) {
    spawnSync(cmd, [...pre, 'update'], { stdio: 'inherit' });
    result = install();
  }
  return result;
}

/**
 * The report test renders a run's HTML report in Debian's Chromium. A machine without it gets the
 * package from apt (as root, or through sudo); FEATHERSTACK_CHROMIUM names another build instead.
 * When neither works, the tests still run: that one test fails, saying what is missing.
 */
function ensureChromium() {
  const path = process.env.FEATHERSTACK_CHROMIUM ?? '/usr/bin/chromium';
  if (existsSync(path)) return;
  if (process.env.FEATHERSTACK_CHROMIUM) {
    process.stderr.write(`✖ FEATHERSTACK_CHROMIUM=${path}: no such file (the report test will fail)\n`);
    return;
  }
  const result = aptInstall('install Chromium for the report test', ['chromium']);
  if (result.status !== 0 || !existsSync(path)) {
    process.stderr.write(
      `✖ could not install Debian's chromium package (${result.error?.message ?? `exit ${result.status}`}); the report test will fail: install it, or set FEATHERSTACK_CHROMIUM to a Chromium binary\n`,
    );
  }
}

/**
 * The distributed-extraction tests run a real Redis: Debian's redis-server, which the tests start on
 * a free loopback port and stop. A machine without it gets the package from apt.
 */
function ensureRedis() {
  if (existsSync('/usr/bin/redis-server')) return;
  const result = aptInstall('install Redis for the job-queue tests', ['redis-server']);
  if (result.status !== 0 || !existsSync('/usr/bin/redis-server')) {
    process.stderr.write(
      `✖ could not install Debian's redis-server (${result.error?.message ?? `exit ${result.status}`}); the job-queue tests will fail: install it\n`,
    );
  }
}

/**
 * The Keras import tests compare against goldens that Python Keras writes at test time
 * (benchmarks/golden/keras_backbones.py), the backbone benchmarks run Keras beside featherstack, and
 * the interop test reads a feature file with pyarrow: a machine without them gets the
 * tensorflow-cpu wheel (the same version provisioning takes libtensorflow from) and pyarrow with pip. `--retries 0`: an unreachable index fails at once
 * instead of being retried with back-off for every package.
 */
function ensurePythonTensorflow() {
  const python = process.env.PYTHON ?? 'python3';
  if (spawnSync(python, ['-c', 'import tensorflow, keras, h5py, pyarrow'], { stdio: 'ignore', env: { ...env, TF_CPP_MIN_LOG_LEVEL: '3' } }).status === 0) return;
  process.stderr.write('\n▶ install Python TensorFlow and pyarrow for the Keras golden and Arrow interop tests (pip install tensorflow-cpu==2.21.0 pyarrow)\n');
  const result = spawnSync(python, ['-m', 'pip', 'install', '--retries', '0', '--disable-pip-version-check', 'tensorflow-cpu==2.21.0', 'pyarrow'], {
    stdio: 'inherit',
    env,
  });
  if (result.status !== 0) {
    process.stderr.write(
      `✖ could not pip install tensorflow-cpu and pyarrow (${result.error?.message ?? `exit ${result.status}`}); the Keras import and Arrow interop tests will fail: install them, or set PYTHON to a python3 that has it\n`,
    );
  }
}

/**
 * What the benchmarks read and run beside featherstack: Debian's Fashion-MNIST and wallpaper photos
 * (the 224² corpora), Keras and PyTorch's CPU wheels (the peer rows). Each is installed only where
 * missing; a failure is said, and the suite that needs it then fails naming it.
 */
function ensureBenchmarkInputs() {
  const missing = [
    ['/usr/share/backgrounds', 'ukui-wallpapers'],
    [process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist', 'dataset-fashion-mnist'],
  ].filter(([path]) => !existsSync(path));
  if (missing.length > 0) aptInstall('install the benchmark datasets', missing.map(([, pkg]) => pkg));
  ensurePythonTensorflow();
  const python = process.env.PYTHON ?? 'python3';
  if (spawnSync(python, ['-c', 'import torch, torchvision, PIL'], { stdio: 'ignore' }).status === 0) return;
  process.stderr.write('\n▶ install PyTorch and Pillow for the peer rows (pip install torch torchvision pillow)\n');
  const result = spawnSync(python, ['-m', 'pip', 'install', '--retries', '0', '--disable-pip-version-check', 'torch', 'torchvision', 'pillow'], { stdio: 'inherit', env });
  if (result.status !== 0) process.stderr.write(`✖ could not pip install torch and torchvision (exit ${result.status}); the PyTorch rows will say so\n`);
}

const verb = process.argv[2] ?? 'build';
const rest = process.argv.slice(3);
install();
build();
switch (verb) {
  case 'build':
    break;
  case 'start':
    step('featherstack run (shipped Fashion-MNIST subset)', process.execPath, [join(root, 'packages', 'cli', 'dist', 'bin.js'), 'run', ...rest]);
    break;
  case 'test':
    step('lint and typecheck (turbo)', bin('turbo'), ['run', 'lint', 'typecheck', '--output-logs=errors-only']);
    ensureChromium();
    ensureRedis();
    ensurePythonTensorflow();
    step('tests (vitest)', bin('vitest'), ['run', ...rest]);
    break;
  case 'bench':
    ensureBenchmarkInputs();
    step('benchmarks', process.execPath, [join(root, 'packages', 'cli', 'dist', 'bin.js'), 'bench', ...rest]);
    break;
  default:
    process.stderr.write(`unknown verb '${verb}': expected build, start, test or bench\n`);
    process.exit(2);
}
