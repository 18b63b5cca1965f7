import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import { type Measurement, measureIsolated, QUICK_OPTIONS } from './lib/harness.js'
import type { RunOptions } from './lib/module.js'
import type { BenchResult } from './lib/results.js'
import { median } from './lib/stats.js'

export const description =
  "the request path's main-thread CPU per request in process (routes, answer, ingest, delivery, metrics, the pool's inline decode): this build vs BENCH_BASELINE_DIR, interleaved, each in threads of its own"

/**
 * One request at a time, as at low rates (the profile's 222 requests/s: every body alone, decoded
 * inline), through the gateway's own parts (bench/lib/request-path-workload.ts): the thread's CPU
 * µs per request answered. Each side runs in COPIES threads, all interleaved: one thread's figure
 * stayed 10–15 % off another's running the same build (each isolate's JIT settles its own way), so
 * a side's figure is the median of its threads' medians, with their range. The body of one event
 * shows the path without most of the decoding, the body of 100 the profile's shape.
 */
const COPIES = 3

export async function run(options: RunOptions): Promise<BenchResult[]> {
  const here = new URL('..', import.meta.url).href // this build's dist/
  const baselineDir = process.env.BENCH_BASELINE_DIR
  const before = baselineDir === undefined ? null : `${pathToFileURL(baselineDir).href}/dist/`
  if (before === null) process.stdout.write('BENCH_BASELINE_DIR unset: this build alone\n')
  const harness = options.quick ? QUICK_OPTIONS : { runs: 11, runMs: 500, warmupMs: 2000 }
  const copies = options.quick ? 1 : COPIES
  const results: BenchResult[] = []
  for (const eventsPerBody of [1, 100]) {
    const sides = [{ name: 'this build', root: here, metrics: true }]
    if (before !== null) sides.push({ name: 'baseline', root: before, metrics: true })
    sides.push({ name: 'this build, metrics off', root: here, metrics: false })
    const workloads = Array.from({ length: copies }, () =>
      sides.map((s) => ({
        module: new URL('./lib/request-path-workload.js', import.meta.url).href,
        factory: 'requestPathWorkload',
        arg: { ...s, eventsPerBody },
      })),
    ).flat()
    const measured = await measureIsolated(workloads, harness)
    const load = loadavg()[0]!
    const perSide = sides.map((s, i) => {
      const own = measured.filter((_, k) => k % sides.length === i).map(cpuPerRequest)
      return { name: s.name, value: median(own), low: Math.min(...own), high: Math.max(...own) }
    })
    const base = before === null ? undefined : perSide[1]!.value
    for (const side of perSide) {
      const range = copies > 1 ? `, threads ${side.low.toFixed(1)}–${side.high.toFixed(1)}` : ''
      results.push({
        case: `POST /v1/impressions json ×${eventsPerBody}, one at a time, inline decode: ${side.name} (load ${load.toFixed(1)}${range})`,
        metric: 'cpu_us_per_request',
        value: side.value,
        unit: 'µs',
        ...(side === perSide[0] && base !== undefined ? { baseline: base, ratio: side.value / base } : {}),
      })
    }
  }
  return results
}

/** The thread's CPU µs per request (one "event" a call), or the process's without the native clock. */
function cpuPerRequest(m: Measurement): number {
  return Number.isNaN(m.threadCpuSecondsPerMillion) ? m.cpuSecondsPerMillion : m.threadCpuSecondsPerMillion
}
