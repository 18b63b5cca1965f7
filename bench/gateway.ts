import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import autocannon from 'autocannon'
import type { Encoding } from '../decoders/result.js'
import { EVENT_INFO, type EventType } from '../events/catalog.js'
import { CONTENT_TYPE, encodeEvents } from '../generator/encode.js'
import { generateEvents } from '../generator/funnel.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, REPO_ROOT } from './lib/results.js'

export const description =
  'end to end: HTTP → decode → Kafka acks=all; adgate vs a naive node:http + kafkajs gateway, same broker'

const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092'
const EVENTS_PER_REQUEST = 100

interface Server {
  port: number
  child: ChildProcess
}

/** Start a server process and wait for the line that gives its port. */
function startServer(args: string[], env: Record<string, string>, portLine: RegExp): Promise<Server> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = portLine.exec(out)
      if (m) resolve({ port: Number(m[1]), child })
    })
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${out}`)))
  })
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.child.once('exit', () => resolve())
    server.child.kill('SIGTERM')
  })
}

/** Peak resident set size of a process, from /proc (VmHWM). */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

/** Distinct generated bodies, so nothing downstream sees the same bytes over and over. */
function bodies(type: EventType, encoding: Encoding, count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    encodeEvents(type, generateEvents(type, EVENTS_PER_REQUEST, 1000 + i), encoding),
  )
}

interface Load {
  url: string
  contentType: string
  bodies: Buffer[]
  seconds: number
  connections: number
  /** Requests per second over all connections (open loop); undefined = as fast as possible. */
  rate?: number
}

interface LoadResult {
  eventsPerSec: number
  p50: number
  p99: number
  p999: number
  non2xx: number
  errors: number
}

async function load(l: Load): Promise<LoadResult> {
  const result = await autocannon({
    url: l.url,
    method: 'POST',
    connections: l.connections,
    duration: l.seconds,
    overallRate: l.rate,
    headers: { 'content-type': l.contentType },
    requests: l.bodies.map((body) => ({ method: 'POST', body })),
  })
  const ok = result['2xx']
  return {
    eventsPerSec: (ok / l.seconds) * EVENTS_PER_REQUEST,
    p50: result.latency.p50,
    p99: result.latency.p99,
    p999: result.latency.p99_9 ?? result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

export async function run(options: RunOptions): Promise<BenchResult[]> {
  const ensure = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'kafka.mjs'), 'start'], {
    stdio: 'inherit',
  })
  if (ensure.status !== 0) throw new Error('the local Kafka broker did not start')
  const seconds = options.quick ? 3 : 8
  const runs = options.quick ? 1 : 3
  const cli = join(REPO_ROOT, 'dist', 'cli', 'main.js')
  const naive = join(REPO_ROOT, 'dist', 'bench', 'peers', 'naive-gateway.js')

  const adgate = await startServer(
    [cli, 'gateway'],
    { KAFKA_BROKERS: BROKERS, PORT: '0', HOST: '127.0.0.1', ADGATE_WORKERS: '1', LOG_LEVEL: 'info' },
    /"port":(\d+)[^\n]*gateway listening/,
  )
  const baseline = await startServer([naive, '0', BROKERS], {}, /listening (\d+)/)
  const results: BenchResult[] = []
  try {
    const impressions = bodies('impression', 'json', 50)
    const url = (s: Server, type: EventType) => `http://127.0.0.1:${s.port}/v1/${EVENT_INFO[type].route}`
    // Closed loop, interleaved runs: the most each can sustain on this machine, medians.
    const ours: number[] = []
    const theirs: number[] = []
    for (let i = 0; i < runs; i++) {
      for (const [server, into] of i % 2 === 0
        ? ([
            [adgate, ours],
            [baseline, theirs],
          ] as const)
        : ([
            [baseline, theirs],
            [adgate, ours],
          ] as const)) {
        const r = await load({
          url: url(server, 'impression'),
          contentType: CONTENT_TYPE.json,
          bodies: impressions,
          seconds,
          connections: 64,
        })
        if (r.non2xx > 0 || r.errors > 0)
          throw new Error(`non-2xx or errors during the run: ${JSON.stringify(r)}`)
        into.push(r.eventsPerSec)
      }
    }
    const max = median(ours)
    results.push({
      case: 'impressions json ×100/request, closed loop',
      metric: 'events_per_s',
      value: max,
      unit: 'events/s',
      baseline: median(theirs),
      ratio: max / median(theirs),
    })

    for (const [type, encoding] of [
      ['click', 'csv'],
      ['bid', 'avro'],
    ] as [EventType, Encoding][]) {
      const r = await load({
        url: url(adgate, type),
        contentType: CONTENT_TYPE[encoding],
        bodies: bodies(type, encoding, 50),
        seconds,
        connections: 64,
      })
      results.push({
        case: `${type}s ${encoding} ×100/request, closed loop`,
        metric: 'events_per_s',
        value: r.eventsPerSec,
        unit: 'events/s',
      })
    }

    // Open loop at half the measured maximum: latency an SRE would see at 50% load.
    const rate = Math.max(1, Math.round(max / 2 / EVENTS_PER_REQUEST))
    const half = await load({
      url: url(adgate, 'impression'),
      contentType: CONTENT_TYPE.json,
      bodies: impressions,
      seconds,
      connections: 32,
      rate,
    })
    const halfCase = `impressions json at 50% of max (${rate} req/s, open loop)`
    results.push({ case: halfCase, metric: 'p50', value: half.p50, unit: 'ms' })
    results.push({ case: halfCase, metric: 'p99', value: half.p99, unit: 'ms' })
    results.push({ case: halfCase, metric: 'p99.9', value: half.p999, unit: 'ms' })
    results.push({
      case: 'gateway process',
      metric: 'peak_rss',
      value: peakRssMb(adgate.child.pid!),
      unit: 'MB',
      baseline: peakRssMb(baseline.child.pid!),
    })
  } finally {
    await Promise.all([stop(adgate), stop(baseline)])
  }
  return results
}
