import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { CONTENT_TYPE } from '../generator/encode.js'
import { byArea, type SelfTime, selfTimes } from './lib/cpu-profile.js'
import type { RunOptions } from './lib/module.js'
import { openLoop } from './lib/open-loop.js'
import { BENCH_BROKERS, benchBroker } from './lib/peer-servers.js'
import {
  PERF_NODE_FLAGS,
  type PerfArea,
  perfAreas,
  perfAvailable,
  perfStages,
  startPerf,
  stopPerf,
} from './lib/perf-record.js'
import { type BenchResult, REPO_ROOT } from './lib/results.js'
import { bodies, cpuSeconds, metric, spoolDrained, startGateway, stop } from './lib/servers.js'
import { warmUp } from './lib/warm-up.js'

export const description =
  'where the gateway CPU goes per request at a fixed open-loop rate (impressions JSON, 100 per request): perf record of every thread when Linux perf is there (CPU samples), else --cpu-prof (wall-time samples); µs per request by thread and area'

/** Offered load: well under saturation on this box, so the profile shows cost, not queueing. */
const EVENTS_PER_S = Number(process.env.BENCH_PROFILE_EVENTS_PER_S ?? 20_000)
const EVENTS = 100
const PROFILES = join(REPO_ROOT, 'data', 'bench-profile')
/** perf (CPU samples) when installed, unless BENCH_PROFILER=v8 asks for V8's wall-time samples. */
const USE_PERF = process.env.BENCH_PROFILER !== 'v8' && perfAvailable()

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

export async function run(options: RunOptions): Promise<BenchResult[]> {
  const seconds = options.quick ? 4 : 15
  rmSync(PROFILES, { recursive: true, force: true })
  mkdirSync(PROFILES, { recursive: true })
  await benchBroker('start')
  const server = await startGateway(
    { KAFKA_BROKERS: BENCH_BROKERS, ADGATE_DATA_DIR: join(REPO_ROOT, 'data', 'bench-profile-spool') },
    REPO_ROOT,
    { nodeArgs: USE_PERF ? PERF_NODE_FLAGS : ['--cpu-prof', '--cpu-prof-dir', PROFILES] },
  )
  let answered = 0
  let from = 0
  let to = 0
  let cpu = 0
  let spooled = 0
  try {
    const requests = bodies('impression', 'json', 50, EVENTS).map((body) => ({
      path: '/v1/impressions',
      headers: { 'content-type': CONTENT_TYPE.json },
      body,
    }))
    const url = `http://127.0.0.1:${server.port}`
    const rate = EVENTS_PER_S / EVENTS
    // Warm-up: pools, topic metadata, and the JIT, which tiers up by calls, not time (warm-up.ts).
    if (options.quick) await openLoop({ url, requests, rate, seconds: 3 })
    else await warmUp(url, requests, rate)
    if (!(await spoolDrained(url)))
      process.stderr.write('profile: the spool did not drain after the warm-up\n')
    from = monotonicUs()
    const spool = () => metric(url, 'adgate_delivered_records_total{destination="spool"}', 0)
    const s0 = await spool()
    const perf = USE_PERF ? startPerf(server.child.pid!, join(PROFILES, 'perf.data')) : null
    const c0 = cpuSeconds(server.child.pid!)
    const r = await openLoop({ url, requests, rate, seconds })
    cpu = cpuSeconds(server.child.pid!) - c0
    if (perf) await stopPerf(perf)
    to = monotonicUs()
    answered = r.requests['2xx']
    spooled = (await spool()) - s0
  } finally {
    await stop(server) // the profiles are written as the threads exit
  }
  await benchBroker('stop').catch(() => {})
  const cpuPerRequestUs = (cpu * 1e6) / Math.max(1, answered)
  const results: BenchResult[] = [
    {
      case: `gateway at ${EVENTS_PER_S} events/s offered (open loop, ${seconds} s): process CPU per request`,
      metric: 'cpu_us_per_request',
      value: Math.round(cpuPerRequestUs),
      unit: 'µs',
    },
    { case: 'requests answered 2xx in the window', metric: 'requests', value: answered, unit: 'requests' },
    // Kafka was not ready, or the spool still held older batches: then the profile is the spool's.
    {
      case: 'records made durable in the spool, not Kafka',
      metric: 'records',
      value: spooled,
      unit: 'records',
    },
  ]
  const perRequest = (us: number) => Math.round((us / Math.max(1, answered)) * 10) / 10
  if (USE_PERF)
    return results.concat(
      perfStages(join(PROFILES, 'perf.data')).map(({ stage, seconds }) => ({
        case: `stage (every thread): ${stage}`,
        metric: 'cpu_us_per_request',
        value: perRequest(seconds * 1e6),
        unit: 'µs',
      })),
      perfResults(perfAreas(join(PROFILES, 'perf.data'), server.child.pid!), perRequest),
    )

  // V8 samples a thread whenever it runs JS or native code, and also while it is blocked inside a
  // call (an fsync under SQLite) or descheduled by a busy machine: a sample's time is wall time
  // spent there, an upper bound on CPU. The process's measured CPU (/proc) is reported beside it.
  // piscina's atomicsWaitLoop is an idle worker parked in Atomics.wait: left out, like (idle).
  const files = readdirSync(PROFILES).filter((f) => f.endsWith('.cpuprofile'))
  const threads = files.map((f) => {
    const times = selfTimes(join(PROFILES, f), from, to).filter((t) => !t.name.startsWith('atomicsWaitLoop '))
    const main = times.some((t) => t.area.startsWith('adgate gateway/'))
    const spool = times.some((t) => t.area.startsWith('adgate spool/store'))
    return { times, thread: main ? 'main thread' : spool ? 'spool thread' : 'decode worker' }
  })
  const all: SelfTime[] = []
  for (const { times, thread } of threads) {
    const total = times.reduce((a, t) => a + t.us, 0)
    results.push({
      case: `${thread}: all`,
      metric: 'sampled_us_per_request',
      value: perRequest(total),
      unit: 'µs',
    })
    for (const a of byArea(times).slice(0, 12))
      results.push({
        case: `${thread}: ${a.area}`,
        metric: 'sampled_us_per_request',
        value: perRequest(a.us),
        unit: 'µs',
      })
    all.push(...times)
  }
  all.sort((a, b) => b.us - a.us)
  for (const t of all.slice(0, 25))
    results.push({
      case: `function ${t.name} [${t.area}]`,
      metric: 'sampled_us_per_request',
      value: perRequest(t.us),
      unit: 'µs',
    })
  return results
}

/** perf's CPU per request: per thread, all of it and its areas (largest first). */
function perfResults(areas: PerfArea[], perRequest: (us: number) => number): BenchResult[] {
  const results: BenchResult[] = []
  const threads = [...new Set(areas.map((a) => a.thread))]
  const total = (t: string) => areas.filter((a) => a.thread === t).reduce((s, a) => s + a.seconds, 0)
  threads.sort((a, b) => total(b) - total(a))
  for (const t of threads) {
    const row = (area: string, seconds: number): BenchResult => ({
      case: `${t}: ${area}`,
      metric: 'cpu_us_per_request',
      value: perRequest(seconds * 1e6),
      unit: 'µs',
    })
    results.push(row('all', total(t)))
    for (const a of areas.filter((x) => x.thread === t).slice(0, 14)) results.push(row(a.area, a.seconds))
  }
  return results
}
