import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The fault-injection scenarios run on their own, one file at a time: npm run test:faults.
    exclude: ['test/faults/**', '**/node_modules/**'],
    globalSetup: ['test/global-setup.ts'],
    // skipped tests (services missing outside CI) are counted loudly at the end; a test that never
    // yields (vitest's timeouts cannot stop it) is named and killed instead of hanging the run
    reporters: ['default', './test/support/skip-summary.ts', './test/support/hang-watchdog.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
})
