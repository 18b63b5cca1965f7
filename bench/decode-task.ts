import { pathToFileURL } from 'node:url'
import type { Encoding } from '../decoders/result.js'
import type { EventType } from '../events/catalog.js'
import { baselineBuild } from './lib/baseline-build.js'
import { type HarnessOptions, measureIsolated, QUICK_OPTIONS } from './lib/harness.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, compared } from './lib/results.js'

export const description =
  "the workers' decode task per encoding, this build against a baseline commit (ADGATE_BENCH_BASELINE)"

/**
 * The workers' hot path as a whole, this build beside an earlier commit's (each in a thread of its
 * own, interleaved): a refactoring of the decode path must not cost more than noise. The baseline
 * is ADGATE_BENCH_BASELINE, by default dffd6a2, the last commit with two decode paths in the
 * worker (decodeOne for CSV and Avro, transcodeOne for JSON).
 */
const CASES: readonly [EventType, Encoding][] = [
  ['impression', 'json'],
  ['impression', 'ndjson'],
  ['click', 'csv'],
  ['bid', 'avro'],
]
const EVENTS = 1000
const WORKLOAD = new URL('./lib/decode-task-workload.js', import.meta.url).href

export async function run(options: RunOptions = { quick: false }): Promise<BenchResult[]> {
  const h: HarnessOptions = options.quick ? QUICK_OPTIONS : {}
  const commit = process.env.ADGATE_BENCH_BASELINE ?? 'dffd6a2'
  const baseline = `${pathToFileURL(baselineBuild(commit, options)).href}/`
  const current = new URL('../', import.meta.url).href
  const results: BenchResult[] = []
  for (const [type, encoding] of CASES) {
    const [now, before] = await measureIsolated(
      [
        { name: 'this build', root: current },
        { name: `baseline (${commit})`, root: baseline },
      ].map((b) => ({
        module: WORKLOAD,
        factory: 'decodeTaskWorkload',
        arg: { ...b, type, encoding, bodies: 1, eventsPerBody: EVENTS, rules: true },
      })),
      h,
    )
    const name = `decode task, ${type}s as ${encoding} ×${EVENTS}: this build vs ${before!.name}`
    results.push(compared(name, 'events/s', 'events/s/core', now!.eventsPerSec, before!.eventsPerSec))
    results.push(
      compared(name, 'CPU', 'CPU-s per 10^6 events', now!.cpuSecondsPerMillion, before!.cpuSecondsPerMillion),
    )
  }
  return results
}
