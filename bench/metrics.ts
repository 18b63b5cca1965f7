import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { createGatewayMetrics, observeTask } from '../gateway/metrics.js'
import { CONTENT_TYPE, encodeEvents } from '../generator/encode.js'
import { generateEvents } from '../generator/funnel.js'
import type { TaskResult } from '../workers/decode-task.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, REPO_ROOT } from './lib/results.js'
import { ensureKafka } from './lib/servers.js'
import { median } from './lib/stats.js'

export const description =
  'what the metrics cost: gateway throughput with metrics on (scraped every second) vs off, same broker, interleaved'

const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092'
const EVENTS_PER_REQUEST = 100

interface Server {
  port: number
  child: ChildProcess
}

function startGateway(mode: 'on' | 'off'): Promise<Server> {
  const entry = join(REPO_ROOT, 'dist', 'bench', 'lib', 'gateway-entry.js')
  const child = spawn(process.execPath, [entry, mode], {
    env: {
      PATH: process.env.PATH,
      KAFKA_BROKERS: BROKERS,
      PORT: '0',
      HOST: '127.0.0.1',
      ADGATE_WORKERS: '1',
      LOG_LEVEL: 'info',
      ADGATE_DATA_DIR: join(REPO_ROOT, 'data', `bench-metrics-${mode}`),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /"port":(\d+)[^\n]*gateway listening/.exec(out)
      if (m) resolve({ port: Number(m[1]), child })
    })
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}) before listening:\n${out}`)))
  })
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve()
    server.child.once('exit', () => resolve())
    server.child.kill('SIGTERM')
  })
}

/** Closed loop, as fast as the gateway answers; events/s of 2xx answers. */
async function load(port: number, bodies: Buffer[], seconds: number, scrape: boolean): Promise<number> {
  // Prometheus would scrape every 15-60 s; every second is the pessimistic case.
  const scraper = scrape
    ? setInterval(() => {
        fetch(`http://127.0.0.1:${port}/metrics`).then(
          (r) => r.text(),
          () => {},
        )
      }, 1000)
    : null
  try {
    const result = await autocannon({
      url: `http://127.0.0.1:${port}/v1/impressions`,
      method: 'POST',
      connections: 32,
      duration: seconds,
      headers: { 'content-type': CONTENT_TYPE.json },
      requests: bodies.map((body) => ({ method: 'POST', body })),
    })
    if (result.non2xx > 0 || result.errors > 0)
      throw new Error(`non-2xx or errors during the run: ${result.non2xx} non-2xx, ${result.errors} errors`)
    return (result['2xx'] / seconds) * EVENTS_PER_REQUEST
  } finally {
    if (scraper) clearInterval(scraper)
  }
}

/**
 * The observations one HTTP request costs on the main thread, in-process, made as the gateway
 * makes them (series looked up per call, gateway/metric-series.ts): seven per request, and a
 * task's (here one task per request, the worst case; under load a task carries many requests).
 */
function observationNs(iterations: number): number {
  const m = createGatewayMetrics()
  const task = {
    busyMs: 0.3,
    rawBytes: 30_000,
    batches: [1, 2, 3, 4].map((p) => ({ records: 25, length: 3000 + p })),
  } as unknown as TaskResult
  const route = '/v1/impressions'
  const once = (i: number) => {
    const { series } = m
    series.bodyBytes.observe(40_000 + (i & 1023))
    observeTask(m, task)
    series.quality('anonymous', 'impression').passed.inc(EVENTS_PER_REQUEST)
    series.durableDuration.observe(0.004)
    series.events('impression', 'json').accepted.inc(EVENTS_PER_REQUEST)
    series.duration(route, 200).observe(0.005)
    series.answered(route, 200).inc()
  }
  for (let i = 0; i < iterations; i++) once(i) // warm-up
  const runs: number[] = []
  for (let r = 0; r < 5; r++) {
    const t = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) once(i)
    runs.push(Number(process.hrtime.bigint() - t) / iterations)
  }
  return median(runs)
}

export async function run(options: RunOptions): Promise<BenchResult[]> {
  ensureKafka()
  const seconds = options.quick ? 2 : 6
  const rounds = options.quick ? 1 : 5
  const bodies = Array.from({ length: 50 }, (_, i) =>
    encodeEvents('impression', generateEvents('impression', EVENTS_PER_REQUEST, 5000 + i), 'json'),
  )
  const on = await startGateway('on')
  const off = await startGateway('off')
  const results: BenchResult[] = []
  try {
    await load(on.port, bodies, 2, true) // warm-up: JIT, connections, Kafka metadata
    await load(off.port, bodies, 2, false)
    const withMetrics: number[] = []
    const without: number[] = []
    for (let r = 0; r < rounds; r++) {
      // Interleaved, alternating which goes first: drift on a shared machine hits both alike.
      if (r % 2 === 0) {
        withMetrics.push(await load(on.port, bodies, seconds, true))
        without.push(await load(off.port, bodies, seconds, false))
      } else {
        without.push(await load(off.port, bodies, seconds, false))
        withMetrics.push(await load(on.port, bodies, seconds, true))
      }
    }
    const a = median(withMetrics)
    const b = median(without)
    const closedLoop = `impressions json ×${EVENTS_PER_REQUEST}/request, closed loop, ${rounds}×${seconds} s each`
    results.push({
      case: `${closedLoop}: metrics on (scraped every 1 s) vs off`,
      metric: 'events_per_s',
      value: a,
      unit: 'events/s',
      baseline: b,
      ratio: a / b,
    })
    results.push({
      case: 'throughput cost of the metrics (1 − on/off, median of the rounds; run-to-run noise included)',
      metric: 'cost',
      value: (1 - a / b) * 100,
      unit: '%',
    })
    const spread = (xs: number[]) => ((Math.max(...xs) - Math.min(...xs)) / median(xs)) * 100
    results.push({
      case: 'run-to-run spread of the metrics-off runs (max − min) / median: the noise floor',
      metric: 'spread',
      value: spread(without),
      unit: '%',
    })
    const ns = observationNs(options.quick ? 20_000 : 200_000)
    results.push({
      case: 'main-thread cost of one request’s observations (7 per request + a whole task’s), in-process',
      metric: 'ns_per_request',
      value: ns,
      unit: 'ns',
    })
    const requestsPerSec = b / EVENTS_PER_REQUEST
    results.push({
      case: `share of one core those observations take at the measured maximum (${Math.round(requestsPerSec)} req/s)`,
      metric: 'main_thread_share',
      value: ((ns * requestsPerSec) / 1e9) * 100,
      unit: '%',
    })
  } finally {
    await Promise.all([stop(on), stop(off)])
  }
  return results
}
