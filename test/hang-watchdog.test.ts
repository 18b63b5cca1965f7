import { spawnSync } from 'node:child_process'
import { expect, it } from 'vitest'

// A test that never yields stops vitest's own timeout too; the watchdog (test/support/hang-watchdog.ts)
// must name it, kill its worker and let the run go on and fail, instead of waiting forever.
it('a test that never yields fails the run, named, and the files after it still run', () => {
  const run = spawnSync('npx', ['vitest', 'run', '--config', 'test/fixtures/hang/vitest.config.ts'], {
    encoding: 'utf8',
    env: { ...process.env, ADGATE_TEST_HANG_MS: '3000' },
    timeout: 50_000,
  })
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the colour escapes
  const output = (run.stdout + run.stderr).replace(/\x1b\[[0-9;]*m/g, '')
  expect(run.signal, output).toBeNull()
  expect(run.status, output).toBe(1)
  expect(output).toMatch(/HUNG: no test progress for \d+ s/)
  expect(output).toContain('never-yields.hang.ts')
  expect(output).toMatch(/killing worker processes \d+/)
  expect(output).toMatch(/✓ after\.hang\.ts/)
})
