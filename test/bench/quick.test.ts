import { execFile } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

/**
 * A smoke run of every in-process bench (`node dist/bench/run.js --quick <name>`): the decoders
 * bench was broken for a session, and the decode-task and cpu-clock benches after it, because
 * nothing ran the benches. --quick fails on a figure that is not a number or a rate of zero.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const RUN = join(ROOT, 'dist', 'bench', 'run.js')

/** Benches left out, and why: each needs a broker of its own, a gateway at fixed rates, or peers. */
const NOT_IN_PROCESS: Record<string, string> = {
  consume: 'fills topics on a broker and consumes them',
  cost: 'gateways and a private broker at fixed open-loop rates',
  gateway: 'gateways and a private broker, closed loop',
  metrics: 'gateways and a private broker, scraped',
  peers: 'builds and starts Camel, Benthos and the OpenTelemetry Collector',
  producer: 'a private broker',
  profile: 'a gateway and a private broker under perf or --cpu-prof',
  'strict-http': 'gateways and a private broker',
}
// The correlator's lag case needs a broker and its streams case a Kafka Streams application.
const ENV = { ...process.env, BENCH_CORRELATOR_CASES: 'throughput,state,recovery' }
/** Minutes, not seconds: at load 20 the slowest of these took 2 min of wall time for 15 s of CPU. */
const TIMEOUT_MS = 600_000

function bench(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [RUN, ...args],
      { cwd: ROOT, env: ENV, maxBuffer: 64 << 20, timeout: TIMEOUT_MS - 10_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
        resolve({ code, output: `${stdout}${stderr}` })
      },
    )
  })
}

/** Modification times of everything a full run writes. */
function written(): Map<string, number> {
  const out = new Map<string, number>()
  for (const dir of ['bench/results', 'bench/plots']) {
    for (const f of readdirSync(join(ROOT, dir))) out.set(`${dir}/${f}`, statSync(join(ROOT, dir, f)).mtimeMs)
  }
  out.set('bench/REPORT.md', statSync(join(ROOT, 'bench', 'REPORT.md')).mtimeMs)
  return out
}

const listed = (await bench(['--list'])).output
  .split('\n')
  .filter((l) => l.includes('\t'))
  .map((l) => l.split('\t')[0]!)
const inProcess = listed.filter((name) => !(name in NOT_IN_PROCESS))

describe('bench --quick', () => {
  it('covers every bench: each is smoke-run here or left out for a stated reason', () => {
    expect(listed).toContain('decoders')
    expect(Object.keys(NOT_IN_PROCESS).filter((name) => !listed.includes(name))).toEqual([])
  })

  it.each(inProcess)(
    '%s runs, reports numbers and writes nothing',
    async (name) => {
      const before = written()
      const { code, output } = await bench(['--quick', name])
      expect(code, output).toBe(0)
      expect(output).toContain('--quick: results not written')
      expect(written()).toEqual(before)
    },
    TIMEOUT_MS,
  )
})
