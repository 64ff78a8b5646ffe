import { defineConfig } from 'vitest/config';

// Three tiers, each its own project: `unit` is pure and fast, `workers` runs inside workerd,
// `integration` talks to a real Kafka broker and a real ClickHouse engine (chdb).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Pure tests: one module graph per worker process instead of one per file (about half
          // the CPU). A test that leaks state into the next file (timers, globals) must clean up
          // after itself. Forks, not threads: native addons need no thread-safe loading.
          isolate: false,
          // A ceiling, not a target: property tests run thousands of cases and CI machines are shared.
          testTimeout: 30_000,
        },
      },
      './test/workers/vitest.config.ts',
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          environment: 'node',
          // libchdb binds one data directory per process: every file gets its own fork.
          pool: 'forks',
          isolate: true,
          fileParallelism: false,
          globalSetup: ['./test/integration/setup/global-kafka.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
