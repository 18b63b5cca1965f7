import { dirname } from 'node:path'
import autocannon from 'autocannon'
import { CONTENT_TYPE } from '../generator/encode.js'
import { baselineBuild } from './lib/baseline-build.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, compared } from './lib/results.js'
// Declaration mirrored in bench/producer.ts and bench/gateway.ts: each bench starts the same servers.
import {
  bodies,
  cpuSeconds,
  ensureKafka,
  load,
  type Server,
  startGateway,
  stop,
  summarise,
} from './lib/servers.js'
import { median } from './lib/stats.js'

export const description =
  'what the strict-HTTP guard (ADGATE_STRICT_HTTP=on, the default) costs: the same gateway with it on and off, interleaved'

const EVENTS_PER_REQUEST = 100

interface Side {
  readonly name: string
  readonly server: Server
  readonly perSecond: number[]
  readonly cpuPerMillion: number[]
}

/**
 * Two cases: batches (impressions JSON ×100 per POST, what ingestion sends) and the worst case for
 * a byte-forwarding guard, tiny requests (GET /healthz: all head, no work behind it). Each run
 * measures one side's throughput and the gateway process's CPU-seconds per million events (or
 * requests); sides alternate and start in turn, medians of the runs.
 */
export async function run(options: RunOptions): Promise<BenchResult[]> {
  ensureKafka()
  const seconds = options.quick ? 3 : 8
  const runs = options.quick ? 1 : 3
  const start = (strict: 'on' | 'off') => startGateway({ ADGATE_WORKERS: '1', ADGATE_STRICT_HTTP: strict })
  const [on, off] = await Promise.all([start('on'), start('off')])
  // BENCH_STRICT_BASELINE=<commit>: that build's guard too, for a before/after of a guard change.
  const baselineCommit = process.env.BENCH_STRICT_BASELINE
  const baseline =
    baselineCommit === undefined
      ? null
      : await startGateway(
          { ADGATE_WORKERS: '1', ADGATE_STRICT_HTTP: 'on' },
          dirname(baselineBuild(baselineCommit, options)),
        )
  const results: BenchResult[] = []
  try {
    const impressions = bodies('impression', 'json', 50, EVENTS_PER_REQUEST)
    const cases = [
      {
        name: 'impressions json ×100/request, closed loop',
        unit: 'events',
        drive: async (s: Server) =>
          (
            await load({
              url: `http://127.0.0.1:${s.port}/v1/impressions`,
              contentType: CONTENT_TYPE.json,
              bodies: impressions,
              eventsPerRequest: EVENTS_PER_REQUEST,
              seconds,
              connections: 64,
            })
          ).eventsPerSec,
      },
      {
        name: 'GET /healthz (tiny requests), closed loop',
        unit: 'requests',
        drive: async (s: Server) =>
          summarise(
            await autocannon({
              url: `http://127.0.0.1:${s.port}/healthz`,
              connections: 64,
              duration: seconds,
            }),
            1,
            seconds,
          ).eventsPerSec,
      },
    ]
    for (const c of cases) {
      const sides: Side[] = [
        { name: 'on', server: on, perSecond: [], cpuPerMillion: [] },
        { name: 'off', server: off, perSecond: [], cpuPerMillion: [] },
      ]
      if (baseline !== null)
        sides.push({ name: `on at ${baselineCommit}`, server: baseline, perSecond: [], cpuPerMillion: [] })
      for (let i = 0; i < runs; i++) {
        for (let k = 0; k < sides.length; k++) {
          const side = sides[(i + k) % sides.length]!
          const cpu = cpuSeconds(side.server.child.pid!)
          const perSecond = await c.drive(side.server)
          const used = cpuSeconds(side.server.child.pid!) - cpu
          side.perSecond.push(perSecond)
          side.cpuPerMillion.push((used / (perSecond * seconds)) * 1e6)
        }
      }
      const [a, b, before] = sides as [Side, Side, Side | undefined]
      if (before !== undefined) {
        const name = `${c.name}: strict HTTP on, this build vs ${baselineCommit}`
        results.push(
          compared(name, `${c.unit}_per_s`, `${c.unit}/s`, median(a.perSecond), median(before.perSecond)),
        )
        results.push(
          compared(
            name,
            'cpu_s_per_M',
            `gateway CPU-s per million ${c.unit}`,
            median(a.cpuPerMillion),
            median(before.cpuPerMillion),
          ),
        )
      }
      results.push({
        case: `${c.name}: strict HTTP on vs off`,
        metric: `${c.unit}_per_s`,
        value: median(a.perSecond),
        unit: `${c.unit}/s`,
        baseline: median(b.perSecond),
        ratio: median(a.perSecond) / median(b.perSecond),
      })
      results.push({
        case: `${c.name}: strict HTTP on vs off`,
        metric: 'cpu_s_per_M',
        value: median(a.cpuPerMillion),
        unit: `gateway CPU-s per million ${c.unit}`,
        baseline: median(b.cpuPerMillion),
        ratio: median(a.cpuPerMillion) / median(b.cpuPerMillion),
      })
    }
  } finally {
    await Promise.all([stop(on), stop(off), ...(baseline === null ? [] : [stop(baseline)])])
  }
  return results
}
