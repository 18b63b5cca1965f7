// Every tool's --help prints its usage and exits 0 without doing its work, and an option it does
// not know is refused with exit 2 (once, `bench/run.js --help` ran every bench). Runs the compiled
// tools and the scripts as a user would.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))

function run(script: string, ...args: string[]) {
  // KAFKA_BROKERS points nowhere: a tool that ignored --help and started would not reach a broker.
  const env = { PATH: process.env.PATH, KAFKA_BROKERS: '127.0.0.1:1', KAFKA_PORT: '1' }
  return spawnSync(process.execPath, [script, ...args], { cwd: root, env, encoding: 'utf8', timeout: 30_000 })
}

const TOOLS: { script: string; before?: string[]; usage: string }[] = [
  { script: 'dist/cli/main.js', usage: 'Usage: adgate <command>' },
  { script: 'dist/cli/main.js', before: ['gateway'], usage: 'Usage: adgate <command>' },
  { script: 'dist/cli/main.js', before: ['correlator'], usage: 'Usage: adgate correlator' },
  { script: 'dist/bench/run.js', usage: 'usage: node dist/bench/run.js' },
  { script: 'dist/loadtest/run.js', usage: 'usage: npm run loadtest' },
  { script: 'scripts/kafka.mjs', usage: 'node scripts/kafka.mjs start|stop|status' },
  { script: 'scripts/kafka-cluster.mjs', usage: 'node scripts/kafka-cluster.mjs start' },
  { script: 'scripts/registry.mjs', usage: 'node scripts/registry.mjs fetch|start|stop|status' },
  { script: 'scripts/lock-platforms.mjs', usage: 'npm run lock:platforms' },
  { script: 'scripts/native-leakcheck.mjs', usage: 'npm run native:leakcheck' },
]

describe.each(TOOLS)('$script $before', ({ script, before = [], usage }) => {
  it('--help prints the usage and exits 0', () => {
    const r = run(script, ...before, '--help')
    expect(r.stdout).toContain(usage)
    expect(r.status).toBe(0)
  })

  it('refuses an unknown option with exit 2', () => {
    const r = run(script, ...before, '--no-such-option')
    expect(r.status).toBe(2)
    expect(r.stdout + r.stderr).toMatch(/usage|unknown|takes no arguments/i)
  })
})
