import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['runner/**/*.test.ts', 'sandbox-agent/**/*.test.ts'],
          // Vitest's 5 s default is a time asserted: a pool test that takes 2.3 s alone took 7 s
          // beside the rest of the suite on two cores. Waits inside tests have bounds of their own.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          // Real containers and a real browser: generous, and never asserted on.
          testTimeout: 180_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
