import { defineConfig } from 'vitest/config';

// One vitest run covers every package's tests and the cross-package integration tests.
// Tests that load native TensorFlow run in forks: tfjs-node is a native addon with process-wide state.
export default defineConfig({
  test: {
    projects: ['packages/*', 'tests'],
    pool: 'forks',
    maxWorkers: 2,
  },
});
