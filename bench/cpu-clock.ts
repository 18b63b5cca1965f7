import { pathToFileURL } from 'node:url'
import { baselineBuild } from './lib/baseline-build.js'
import { measureIsolated, QUICK_OPTIONS } from './lib/harness.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, compared } from './lib/results.js'

export const description =
  "what the per-request CPU budget's clock costs: the thread's CPU time (native, c04b5c6) against wall time (the build before it), in a worker's decode task, A/B in one run"

/**
 * c04b5c6 made the per-request CPU budget (ADGATE_REQUEST_CPU_MS) and the refused-work charge read
 * the decoder thread's CPU time (CLOCK_THREAD_CPUTIME_ID through the native addon: a system call,
 * ~0.7 µs here) instead of performance.now() (~0.08 µs): two reads per body and one per 64 events.
 * Its parent, aef6796, is the baseline: between the two, decoders/ and workers/ differ only by the
 * clock. Small bodies are where two reads per body weigh most.
 */
const BASELINE = 'c04b5c6^'

export async function run(options: RunOptions): Promise<BenchResult[]> {
  const here = new URL('..', import.meta.url).href // this build's dist/
  const before = `${pathToFileURL(baselineBuild(BASELINE, options)).href}/`
  const harness = options.quick ? QUICK_OPTIONS : { runs: 15, runMs: 300 }
  const cases = [
    { label: 'impressions json ×100/body, 8 bodies/task', bodies: 8, eventsPerBody: 100 },
    { label: 'impression json ×1/body, 64 bodies/task', bodies: 64, eventsPerBody: 1 },
  ]
  const results: BenchResult[] = []
  for (const c of cases) {
    const workload = (name: string, root: string) => ({
      module: new URL('./lib/decode-task-workload.js', import.meta.url).href,
      factory: 'decodeTaskWorkload',
      arg: { name, root, bodies: c.bodies, eventsPerBody: c.eventsPerBody },
    })
    const [cpu, wall] = await measureIsolated(
      [workload('thread CPU clock (this build)', here), workload(`wall clock (${BASELINE})`, before)],
      harness,
    )
    const name = `decode task, ${c.label}: thread CPU clock vs wall clock`
    results.push(compared(name, 'events/s', 'events/s/core', cpu!.eventsPerSec, wall!.eventsPerSec))
    results.push(
      compared(
        name,
        'cpu_s_per_M',
        'CPU-s per 10^6 events',
        cpu!.cpuSecondsPerMillion,
        wall!.cpuSecondsPerMillion,
      ),
    )
  }
  return results
}
