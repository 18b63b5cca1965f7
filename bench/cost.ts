import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { CONTENT_TYPE } from '../generator/encode.js'
import type { RunOptions } from './lib/module.js'
import { openLoop } from './lib/open-loop.js'
import { BENCH_BROKERS, benchBroker, brokerPid } from './lib/peer-servers.js'
import { type BenchResult, REPO_ROOT } from './lib/results.js'
import { bodies, cpuSeconds, metric, type Server, spoolDrained, startGateway, stop } from './lib/servers.js'
import { median } from './lib/stats.js'
import { warmUp } from './lib/warm-up.js'

export const description =
  'CPU cost per event at fixed open-loop rates: server and broker CPU-s and the gateway main-thread GC seconds per million events (impressions JSON, 100 per request), this checkout vs BENCH_BASELINE_DIR (or vs itself under other settings: BENCH_CANDIDATE_ENV, BENCH_BASELINE_ENV), interleaved rounds on the private broker'

/**
 * What a change to the gateway costs or saves per event, measured the way the machine allows: the
 * candidate and the baseline (BENCH_BASELINE_DIR, a built checkout of the code before the change)
 * run side by side on the bench's private broker and take turns, round after round, at the same
 * offered rates, so the noise of a shared 2-core box lands on both; figures are medians and the
 * ratio is candidate ÷ baseline. CPU is user+system of the gateway process and of the broker
 * over each run (/proc), per million events answered 2xx. A setting is A/B-tested the same way:
 * BENCH_CANDIDATE_ENV and BENCH_BASELINE_ENV ("ADGATE_X=1 ADGATE_Y=2") are each side's gateway
 * settings; with either and no BENCH_BASELINE_DIR, the baseline is this checkout too. With none of
 * them only this checkout is measured.
 */
const EVENTS = 100
const RATES = (process.env.BENCH_COST_RATES ?? '3000,20000').split(',').map(Number)

type Side = 'candidate' | 'baseline'

interface Sample {
  serverPerM: number
  brokerPerM: number
  /** The gateway main thread's GC pauses (its adgate_nodejs_gc_duration_seconds), -1 without metrics. */
  gcPerM: number
  p50: number
  p99: number
  spooled: number
  /** Produce requests and record batches Kafka acknowledged, per million events (-1: the build does not count batches). */
  requestsPerM: number
  batchesPerM: number
  /** The machine's 1-minute load average after the run: how shared the box was. */
  load: number
}

/** "A=1 B=2" → { A: '1', B: '2' }. */
function envOf(name: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of (process.env[name] ?? '').split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new Error(`${name}: "${pair}" is not NAME=value`)
    out[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return out
}

const SIDE_ENV: Record<Side, Record<string, string>> = {
  candidate: envOf('BENCH_CANDIDATE_ENV'),
  baseline: envOf('BENCH_BASELINE_ENV'),
}

function gatewayFrom(root: string, side: Side): Promise<Server> {
  const dataDir = join(REPO_ROOT, 'data', `bench-cost-${side}`)
  return startGateway({ KAFKA_BROKERS: BENCH_BROKERS, ADGATE_DATA_DIR: dataDir, ...SIDE_ENV[side] }, root)
}

const REQUESTS = bodies('impression', 'json', 50, EVENTS).map((body) => ({
  path: '/v1/impressions',
  headers: { 'content-type': CONTENT_TYPE.json },
  body,
}))

async function measure(server: Server, eventsPerS: number, seconds: number): Promise<Sample> {
  const url = `http://127.0.0.1:${server.port}`
  const spool = () => metric(url, 'adgate_delivered_records_total{destination="spool"}', 0)
  const s0 = await spool()
  const requests = () => metric(url, 'adgate_kafka_produce_requests_total', 0)
  // Counted since the merging of batches across requests; an older baseline has no such metric.
  const batches = () => metric(url, 'adgate_kafka_record_batches_total', Number.NaN)
  const gc = () => metric(url, 'adgate_nodejs_gc_duration_seconds_sum', Number.NaN)
  const [q0, k0, g0] = [await requests(), await batches(), await gc()]
  const c0 = cpuSeconds(server.child.pid!)
  const b0 = cpuSeconds(brokerPid())
  const r = await openLoop({ url, requests: REQUESTS, rate: eventsPerS / EVENTS, seconds })
  const cpu = cpuSeconds(server.child.pid!) - c0
  const broker = cpuSeconds(brokerPid()) - b0
  const events = r.requests['2xx'] * EVENTS
  const perM = (n: number) => (n / Math.max(1, events)) * 1e6
  const batchCount = (await batches()) - k0
  const gcSeconds = (await gc()) - g0
  return {
    requestsPerM: perM((await requests()) - q0),
    batchesPerM: Number.isNaN(batchCount) ? -1 : perM(batchCount),
    serverPerM: (cpu / Math.max(1, events)) * 1e6,
    brokerPerM: (broker / Math.max(1, events)) * 1e6,
    gcPerM: Number.isNaN(gcSeconds) ? -1 : perM(gcSeconds),
    p50: r.latency_ms.p50,
    p99: r.latency_ms.p99,
    spooled: (await spool()) - s0,
    load: loadavg()[0]!,
  }
}

const r3 = (x: number) => Math.round(x * 1000) / 1000

export async function run(options: RunOptions): Promise<BenchResult[]> {
  const seconds = options.quick ? 3 : 10
  const rounds = options.quick ? 1 : 5
  const settingsOnly =
    process.env.BENCH_BASELINE_DIR === undefined &&
    Object.keys({ ...SIDE_ENV.candidate, ...SIDE_ENV.baseline }).length > 0
  const baselineRoot = settingsOnly ? REPO_ROOT : process.env.BENCH_BASELINE_DIR
  const withBaseline = baselineRoot !== undefined && existsSync(join(baselineRoot, 'dist', 'cli', 'main.js'))
  if (!withBaseline) process.stdout.write('BENCH_BASELINE_DIR unset or not built: this checkout alone\n')
  const settings = (side: Side) =>
    Object.entries(SIDE_ENV[side])
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || 'defaults'
  // The results file says which settings were compared, not only the log.
  const settingsLabel = settingsOnly ? `, ${settings('candidate')} vs ${settings('baseline')}` : ''
  for (const side of ['candidate', 'baseline'] as const)
    if (Object.keys(SIDE_ENV[side]).length > 0)
      process.stdout.write(`${side}: ${JSON.stringify(SIDE_ENV[side])}\n`)
  await benchBroker('start')
  const servers = new Map<Side, Server>()
  const results: BenchResult[] = []
  try {
    servers.set('candidate', await gatewayFrom(REPO_ROOT, 'candidate'))
    if (withBaseline) servers.set('baseline', await gatewayFrom(baselineRoot, 'baseline'))
    const sides = [...servers.keys()]
    for (const [side, server] of servers) {
      const url = `http://127.0.0.1:${server.port}`
      // JIT (by calls: see warm-up.ts), topic metadata, connections.
      if (options.quick) await measure(server, RATES[0]!, 3)
      else await warmUp(url, REQUESTS, RATES[0]! / EVENTS)
      if (!(await spoolDrained(url)))
        process.stderr.write(`cost: ${side}: the spool did not drain after the warm-up\n`)
    }
    for (const rate of RATES) {
      const got = new Map<Side, Sample[]>(sides.map((s) => [s, []]))
      for (let r = 0; r < rounds; r++)
        for (let i = 0; i < sides.length; i++) {
          const side = sides[(i + r) % sides.length]!
          got.get(side)!.push(await measure(servers.get(side)!, rate, seconds))
        }
      const c = `impressions JSON ×${EVENTS}/request, ${rate} events/s offered, open loop, median of ${rounds}${settingsLabel}`
      const m = (side: Side, f: (s: Sample) => number) => r3(median(got.get(side)!.map(f)))
      const row = (metricName: string, unit: string, f: (s: Sample) => number): BenchResult => {
        const value = m('candidate', f)
        if (!withBaseline) return { case: c, metric: metricName, value, unit }
        const baseline = m('baseline', f)
        if (baseline < 0) return { case: c, metric: metricName, value, unit }
        if (baseline === 0) return { case: c, metric: metricName, value, unit, baseline }
        return { case: c, metric: metricName, value, unit, baseline, ratio: r3(value / baseline) }
      }
      results.push(
        row('server_cpu_s_per_M', 'CPU-s', (s) => s.serverPerM),
        row('broker_cpu_s_per_M', 'CPU-s', (s) => s.brokerPerM),
        row('main_thread_gc_s_per_M', 's', (s) => s.gcPerM),
        row('p50_ms', 'ms', (s) => s.p50),
        row('p99_ms', 'ms', (s) => s.p99),
        // Records the spool took instead of Kafka: then the figure is the spool's, not the Kafka path's.
        row('spooled_records', 'records', (s) => s.spooled),
        row('produce_requests_per_M', 'requests', (s) => s.requestsPerM),
        row('record_batches_per_M', 'batches', (s) => s.batchesPerM),
        row('load_average', 'runnable threads', (s) => s.load),
      )
    }
  } finally {
    for (const server of servers.values()) await stop(server)
    await benchBroker('stop').catch(() => {})
  }
  return results
}
