import { join } from 'node:path'
import type { Encoding } from '../decoders/result.js'
import { EVENT_INFO, type EventType } from '../events/catalog.js'
import { CONTENT_TYPE } from '../generator/encode.js'
import type { RunOptions } from './lib/module.js'
import { openLoop } from './lib/open-loop.js'
import { type BenchResult, REPO_ROOT } from './lib/results.js'
// Declaration mirrored in bench/producer.ts and bench/strict-http.ts: each bench starts the same servers.
import {
  BROKERS,
  load as drive,
  ensureKafka,
  type Load,
  bodies as makeBodies,
  peakRssMb,
  type Server,
  startGateway,
  startServer,
  stop,
} from './lib/servers.js'
import { median } from './lib/stats.js'

export const description =
  'end to end: HTTP → decode → Kafka acks=all; adgate vs a naive node:http gateway (one Kafka send per request), same broker'

const EVENTS_PER_REQUEST = 100

const bodies = (type: EventType, encoding: Encoding, count: number) =>
  makeBodies(type, encoding, count, EVENTS_PER_REQUEST)
const load = (l: Omit<Load, 'eventsPerRequest'>) => drive({ ...l, eventsPerRequest: EVENTS_PER_REQUEST })

export async function run(options: RunOptions): Promise<BenchResult[]> {
  ensureKafka()
  const seconds = options.quick ? 3 : 8
  const runs = options.quick ? 1 : 3
  const naive = join(REPO_ROOT, 'dist', 'bench', 'peers', 'naive-gateway.js')

  const adgate = await startGateway({ ADGATE_WORKERS: '1' })
  // The same gateway with JSON through the JS decoder: what the native transcoder changes end to end.
  const adgateJs = await startGateway({ ADGATE_WORKERS: '1', ADGATE_NATIVE: '0' })
  const baseline = await startServer([naive, '0', BROKERS], {}, /listening (\d+)/)
  const results: BenchResult[] = []
  try {
    const impressions = bodies('impression', 'json', 50)
    const url = (s: Server, type: EventType) => `http://127.0.0.1:${s.port}/v1/${EVENT_INFO[type].route}`
    // Closed loop, interleaved runs: the most each can sustain on this machine, medians.
    const ours: number[] = []
    const oursJs: number[] = []
    const theirs: number[] = []
    const sides = [
      [adgate, ours],
      [adgateJs, oursJs],
      [baseline, theirs],
    ] as const
    for (let i = 0; i < runs; i++) {
      // Each run starts with a different side, so no side always goes first.
      for (let k = 0; k < sides.length; k++) {
        const [server, into] = sides[(i + k) % sides.length]!
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
    results.push({
      case: 'impressions json ×100/request, closed loop: native transcoder vs JS decoder (ADGATE_NATIVE=0)',
      metric: 'events_per_s',
      value: max,
      unit: 'events/s',
      baseline: median(oursJs),
      ratio: max / median(oursJs),
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

    // Open loop at half the measured maximum: latency an SRE would see at 50% load, from the
    // constant-rate generator (latency from each request's intended send time).
    const rate = Math.max(1, Math.round(max / 2 / EVENTS_PER_REQUEST))
    const half = await openLoop({
      url: `http://127.0.0.1:${adgate.port}`,
      requests: impressions.map((body) => ({
        path: `/v1/${EVENT_INFO.impression.route}`,
        headers: { 'content-type': CONTENT_TYPE.json },
        body,
      })),
      rate,
      seconds,
    })
    const kept = half.schedule.kept ? '' : ', schedule not kept'
    const halfCase = `impressions json at 50% of max (${rate} req/s, open loop${kept})`
    results.push({ case: halfCase, metric: 'p50_ms', value: half.latency_ms.p50, unit: 'ms' })
    results.push({ case: halfCase, metric: 'p99_ms', value: half.latency_ms.p99, unit: 'ms' })
    results.push({ case: halfCase, metric: 'p999_ms', value: half.latency_ms.p999, unit: 'ms' })
    results.push({
      case: 'gateway process',
      metric: 'peak_rss',
      value: peakRssMb(adgate.child.pid!),
      unit: 'MB',
      baseline: peakRssMb(baseline.child.pid!),
    })
  } finally {
    await Promise.all([stop(adgate), stop(adgateJs), stop(baseline)])
  }
  return results
}
