import { defineConfig } from 'vitest/config'

// `npm run test:faults`: the fault-injection scenarios (test/faults/). They stop and throttle a
// private broker, kill gateways and fill disks, so they run one file at a time, after the main suite.
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // skipped tests (services missing outside CI) are counted loudly at the end; a test that never
    // yields (vitest's timeouts cannot stop it) is named and killed instead of hanging the run
    reporters: ['default', './test/support/skip-summary.ts', './test/support/hang-watchdog.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 240_000,
    pool: 'forks',
  },
})
