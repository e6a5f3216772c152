import { defineConfig } from 'vitest/config';

// Tests import the built package (dist/): worker threads on Node 20 cannot load .ts files.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: thread-heavy files in parallel would starve each other's workers.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
