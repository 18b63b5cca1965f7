import { readdirSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

// `npm run test:unit`: the fast loop (no Kafka, no PostgreSQL, no build) — every test file that runs
// in-process against the TypeScript source. A file is left to the full suite (`npm test`) when it
// asks the global setup for a service (inject), runs the compiled dist/, starts a gateway or a
// broker, spawns a process, or opens an embedded database (test/storage/); that is read from the
// file itself, so a new test lands on the right side without a list to keep. A file that opens
// with "// Slow suite" (long simulations) is left to the full suite too, to keep this loop fast.
const NEEDS_MORE =
  /\binject\('|dist\/|support\/(gateway|postgres|kafka|second-broker|registry|cli-process)|\bspawn(Sync)?\(|\bexecFile/

const unitFiles = readdirSync('test', { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts') && !f.startsWith('faults/') && !f.startsWith('storage/'))
  .map((f) => `test/${f}`)
  .filter((f) => {
    const text = readFileSync(f, 'utf8')
    return !NEEDS_MORE.test(text) && !text.startsWith('// Slow suite')
  })

// A file measuring the whole process (its RSS or CPU time) gets a process of its own: in a shared
// one, the tests running in the other threads would count too.
const PROCESS_WIDE = /process\.(memoryUsage|cpuUsage|resourceUsage)\(/
const ownProcess = unitFiles.filter((f) => PROCESS_WIDE.test(readFileSync(f, 'utf8')))

const shared = {
  testTimeout: 60_000,
  // Property tests draw a quarter of their cases here, the full count in `npm test` (support/runs.ts).
  env: { ADGATE_QUICK_PROPERTIES: '1' },
}

export default defineConfig({
  test: {
    // vitest's default leaves a core idle (cores - 1 workers), which on a 2-core machine means one.
    maxWorkers: availableParallelism(),
    projects: [
      {
        test: {
          ...shared,
          name: 'unit',
          include: unitFiles.filter((f) => !ownProcess.includes(f)),
          // None of these files mocks a module or writes the environment, so they can share a
          // thread: one thread per core imports the source once instead of once per file.
          pool: 'threads',
          isolate: false,
        },
      },
      { test: { ...shared, name: 'unit (own process)', include: ownProcess, pool: 'forks' } },
    ],
  },
})
