import { Counter, Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { counterSeries, histogramSeries } from '../../gateway/metric-series.js'
import { createGatewayMetrics, observeTask } from '../../gateway/metrics.js'
import { RECORD_BATCH_HEADER_BYTES } from '../../kafka/protocol/record-batch.js'
import type { TaskResult } from '../../workers/decode-task.js'

/** A counter and two histograms (labelled and not), as the gateway defines them, in a registry of their own. */
function metricsIn() {
  const registry = new Registry()
  const registers = [registry]
  return {
    registry,
    events: new Counter({ name: 'c_events', help: 'h', labelNames: ['type', 'outcome'], registers }),
    busy: new Counter({ name: 'c_busy', help: 'h', registers }),
    duration: new Histogram({
      name: 'h_duration',
      help: 'h',
      labelNames: ['route', 'status_class'],
      buckets: [0.001, 0.01, 0.1],
      registers,
    }),
    bytes: new Histogram({ name: 'h_bytes', help: 'h', buckets: [256, 1024], registers }),
  }
}

type Observation =
  | { kind: 'events'; type: string; outcome: string; n: number }
  | { kind: 'busy'; n: number }
  | { kind: 'duration'; route: string; status_class: string; v: number }
  | { kind: 'bytes'; v: number }

// Floats whose sums round, values on and past the bounds, zero, a label set seen late.
const observations: Observation[] = [
  { kind: 'busy', n: 0.1 },
  { kind: 'duration', route: '/v1/impressions', status_class: '2xx', v: 0.0005 },
  { kind: 'events', type: 'impression', outcome: 'accepted', n: 100 },
  { kind: 'bytes', v: 256 },
  { kind: 'busy', n: 0.2 },
  { kind: 'duration', route: '/v1/impressions', status_class: '2xx', v: 0.01 },
  { kind: 'duration', route: '/v1/impressions', status_class: '5xx', v: 7.3 },
  { kind: 'bytes', v: 1e6 },
  { kind: 'events', type: 'impression', outcome: 'accepted', n: 0 },
  { kind: 'events', type: 'click', outcome: 'rejected', n: 3 },
  { kind: 'busy', n: 0.7 },
  { kind: 'bytes', v: 0 },
  { kind: 'duration', route: '/v1/impressions', status_class: '2xx', v: 0.1 + 0.2 },
]

/** Every observation by direct prom-client calls. */
function direct(m: ReturnType<typeof metricsIn>, obs: readonly Observation[]): void {
  for (const o of obs) {
    if (o.kind === 'events') m.events.inc({ type: o.type, outcome: o.outcome }, o.n)
    else if (o.kind === 'busy') m.busy.inc(o.n)
    else if (o.kind === 'duration') m.duration.observe({ route: o.route, status_class: o.status_class }, o.v)
    else m.bytes.observe(o.v)
  }
}

/** The same observations through series, each looked up once. */
function throughSeries(m: ReturnType<typeof metricsIn>) {
  const counters = new Map<string, ReturnType<typeof counterSeries>>()
  const histograms = new Map<string, ReturnType<typeof histogramSeries>>()
  const busy = counterSeries(m.busy)
  const bytes = histogramSeries(m.bytes)
  return (obs: readonly Observation[]) => {
    for (const o of obs) {
      if (o.kind === 'events') {
        const key = `${o.type}/${o.outcome}`
        if (!counters.has(key))
          counters.set(key, counterSeries(m.events, { type: o.type, outcome: o.outcome }))
        counters.get(key)!.inc(o.n)
      } else if (o.kind === 'busy') busy.inc(o.n)
      else if (o.kind === 'duration') {
        const key = `${o.route}/${o.status_class}`
        if (!histograms.has(key))
          histograms.set(key, histogramSeries(m.duration, { route: o.route, status_class: o.status_class }))
        histograms.get(key)!.observe(o.v)
      } else bytes.observe(o.v)
    }
  }
}

describe('metric series', () => {
  it('read exactly as the same direct prom-client calls, across scrapes and a reset', async () => {
    const a = metricsIn()
    const b = metricsIn()
    const observe = throughSeries(b)
    for (let round = 0; round < 3; round++) {
      direct(a, observations)
      observe(observations)
      expect(await b.registry.metrics()).toBe(await a.registry.metrics())
    }
    a.registry.resetMetrics()
    b.registry.resetMetrics()
    direct(a, observations.slice(3))
    observe(observations.slice(3))
    expect(await b.registry.metrics()).toBe(await a.registry.metrics())
    expect(await b.registry.metrics()).toMatch(
      /h_duration_bucket\{le="0.001",route="\/v1\/impressions",status_class="2xx"\} 0/,
    )
  })

  it('make no series before their first observation', async () => {
    const m = metricsIn()
    counterSeries(m.events, { type: 'bid', outcome: 'accepted' })
    histogramSeries(m.duration, { route: '/v1/bids', status_class: '2xx' })
    const text = await m.registry.metrics()
    expect(text).not.toContain('bid')
  })

  it('refuse what prom-client refuses, with its errors', () => {
    const m = metricsIn()
    const events = counterSeries(m.events, { type: 'bid', outcome: 'accepted' })
    events.inc(1)
    expect(() => events.inc(-1)).toThrow('It is not possible to decrease a counter')
    expect(() => events.inc(Number.POSITIVE_INFINITY)).toThrow('Value is not a valid number')
    const bytes = histogramSeries(m.bytes)
    bytes.observe(1)
    expect(() => bytes.observe(Number.NaN)).toThrow('Value is not a valid number')
    expect(() => counterSeries(m.events, { type: 'bid', nope: 'x' }).inc()).toThrow('Added label "nope"')
  })

  it("a series of a label set prom-client already has adds to that set's", async () => {
    const m = metricsIn()
    m.events.inc({ type: 'bid', outcome: 'accepted' }, 2)
    counterSeries(m.events, { type: 'bid', outcome: 'accepted' }).inc(3)
    counterSeries(m.events, { type: 'bid', outcome: 'accepted' }).inc(4)
    expect(await m.registry.metrics()).toContain('c_events{type="bid",outcome="accepted"} 9')
  })
})

describe("the gateway's series", () => {
  it('observe a task as the direct calls did', async () => {
    const result = {
      busyMs: 0.37,
      rawBytes: 30_000,
      batches: [
        { records: 25, length: 3001 },
        { records: 75, length: 9000 },
      ],
    } as unknown as TaskResult
    const g = createGatewayMetrics()
    observeTask(g, result)
    observeTask(g, null)
    const want = createGatewayMetrics()
    want.workerTasks.inc({ result: 'ok' })
    want.workerBusy.inc(0.37 / 1000)
    for (const b of result.batches) {
      want.batchRecords.observe(b.records)
      want.batchBytes.observe(b.length)
    }
    want.batchUncompressed.inc(30_000)
    want.batchCompressed.inc(3001 + 9000 - 2 * RECORD_BATCH_HEADER_BYTES)
    want.workerTasks.inc({ result: 'failed' })
    const own = (text: string) =>
      text
        .split('\n')
        .filter((l) => /adgate_(worker_(tasks|busy)|kafka_batch)/.test(l))
        .join('\n')
    expect(own(await g.registry.metrics())).toBe(own(await want.registry.metrics()))
  })

  it('are each made once per label set', () => {
    const { series } = createGatewayMetrics()
    expect(series.events('impression', 'json')).toBe(series.events('impression', 'json'))
    expect(series.events('impression', 'json')).not.toBe(series.events('impression', 'csv'))
    expect(series.answered('/v1/clicks', 200)).toBe(series.answered('/v1/clicks', 200))
    expect(series.duration('/v1/clicks', 200)).toBe(series.duration('/v1/clicks', 200))
  })

  it('are no-ops with metrics disabled', () => {
    const { series } = createGatewayMetrics({ enabled: false })
    expect(() => {
      series.events('impression', 'json').accepted.inc(5)
      series.duration('/v1/clicks', 503).observe(1)
      observeTask(createGatewayMetrics({ enabled: false }), null)
    }).not.toThrow()
  })
})
