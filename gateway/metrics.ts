import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { scrapedGauge, scrapedTotals } from '../config/scraped-metrics.js'
import { memoized } from '../decoders/memo.js'
import { RECORD_BATCH_HEADER_BYTES } from '../kafka/protocol/record-batch.js'
import type { TaskResult } from '../workers/decode-task.js'
import type { Destination } from './delivery.js'
import { type CounterSeries, counterSeries, histogramSeries, NOOP_SERIES } from './metric-series.js'

export interface GatewayMetricsOptions {
  /**
   * false: every metric is a no-op and nothing is collected (bench/metrics.ts measures the
   * gateway with and without its metrics this way; never used in production).
   */
  readonly enabled?: boolean
}

/**
 * The gateway's metrics, documented one row each in the README's "Metrics" table (a test scrapes
 * /metrics and compares names, types and labels with it). Observed once per request, per
 * WebSocket batch or per worker task, never per event (an observation costs hundreds of ns);
 * state and totals kept by their owners are read by prom-client's collect() at scrape time
 * (registerGatewayState below, kafka/metrics.ts, spool/metrics.ts). Labels are
 * bounded sets: route, status, status_class, type, encoding, outcome, reason (an error code),
 * destination, result. Never an id, a key or a key's name.
 */
export function createGatewayMetrics(options: GatewayMetricsOptions = {}) {
  const on = options.enabled !== false
  const registry = new Registry()
  if (on) collectDefaultMetrics({ register: registry, prefix: 'adgate_' })
  const registers = [registry]
  const m: Define = <T>(create: () => T): T => (on ? create() : (NOOP as T))
  const metrics = {
    ...requestMetrics(m, registers),
    ...eventMetrics(m, registers),
    ...qualityMetrics(m, registers),
    ...refusedWorkMetrics(m, registers),
    ...workerMetrics(m, registers),
    ...batchMetrics(m, registers),
  }
  return {
    registry,
    /** false: the bench's no-metrics mode (nothing registered, nothing read at scrape time). */
    enabled: on,
    ...metrics,
    /** What the request path observes, as series looked up once (metric-series.ts says why). */
    series: on ? seriesOf(metrics) : noSeries(),
  }
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>

/** A metric created by `create`, or the no-op stand-in when metrics are disabled. */
type Define = <T>(create: () => T) => T

const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** HTTP requests and WebSocket batches: counts, latency, body sizes (observed once per request or batch). */
function requestMetrics(m: Define, registers: Registry[]) {
  return {
    requests: m(
      () =>
        new Counter({
          name: 'adgate_http_requests_total',
          help: 'HTTP requests to the event routes answered, by route and status code',
          labelNames: ['route', 'status'] as const,
          registers,
        }),
    ),
    wsBatches: m(
      () =>
        new Counter({
          name: 'adgate_websocket_batches_total',
          help: 'WebSocket batches answered (acked), by status code',
          labelNames: ['status'] as const,
          registers,
        }),
    ),
    wsConnections: m(
      () =>
        new Gauge({
          name: 'adgate_websocket_connections',
          help: 'Open /v1/stream connections',
          registers,
        }),
    ),
    requestDuration: m(
      () =>
        new Histogram({
          name: 'adgate_request_duration_seconds',
          help: 'From the first byte of a body (or a WebSocket batch) to its answer, by route and status class',
          labelNames: ['route', 'status_class'] as const,
          buckets: latencyBuckets,
          registers,
        }),
    ),
    durableDuration: m(
      () =>
        new Histogram({
          name: 'adgate_ingest_to_ack_seconds',
          help: 'From receipt of a body to its events being durable (Kafka acks=all or spool fsync)',
          buckets: latencyBuckets,
          registers,
        }),
    ),
    bodyBytes: m(
      () =>
        new Histogram({
          name: 'adgate_request_body_bytes',
          help: 'Size of request bodies and WebSocket batch bodies as received',
          buckets: [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304],
          registers,
        }),
    ),
  }
}

/** Events by fate, rejections by error code, dead letters (observed once per request). */
function eventMetrics(m: Define, registers: Registry[]) {
  return {
    events: m(
      () =>
        new Counter({
          name: 'adgate_events_total',
          help: 'Events of decoded bodies, by fate: accepted (durable), rejected (invalid), failed (valid, answered 503)',
          labelNames: ['type', 'encoding', 'outcome'] as const,
          registers,
        }),
    ),
    rejected: m(
      () =>
        new Counter({
          name: 'adgate_events_rejected_total',
          help: 'Rejected events (or undecodable bodies, 1 each) by error code',
          labelNames: ['type', 'encoding', 'reason'] as const,
          registers,
        }),
    ),
    deadLetters: m(
      () =>
        new Counter({
          name: 'adgate_dead_letters_total',
          help: 'Dead-letter records (rejected events, undecodable bodies) made durable for adgate.dlq',
          labelNames: ['type', 'encoding'] as const,
          registers,
        }),
    ),
  }
}

/** Data quality (quality/), per request; source is an API key name (a bounded set from config). */
function qualityMetrics(m: Define, registers: Registry[]) {
  return {
    qualityEvents: m(
      () =>
        new Counter({
          name: 'adgate_quality_events_total',
          help: 'Schema-valid events checked by the data-quality rules, by source (API key name), type and verdict: passed, flagged, rejected',
          labelNames: ['source', 'type', 'verdict'] as const,
          registers,
        }),
    ),
    qualityThreshold: m(
      () =>
        new Gauge({
          name: 'adgate_quality_threshold',
          help: 'The configured quality score thresholds: healthy (ADGATE_QUALITY_HEALTHY), minimum (ADGATE_QUALITY_MINIMUM)',
          labelNames: ['level'] as const,
          registers,
        }),
    ),
    qualityReloads: m(
      () =>
        new Counter({
          name: 'adgate_quality_rules_reloads_total',
          help: 'Changes of the rules file: ok (the new version is in force) or failed (invalid, the old one stays)',
          labelNames: ['result'] as const,
          registers,
        }),
    ),
  }
}

/** Refused work charged to its clients (gateway/refused-work.ts; observed per refused body). */
function refusedWorkMetrics(m: Define, registers: Registry[]) {
  return {
    refusedWork: m(
      () =>
        new Counter({
          name: 'adgate_refused_work_seconds_total',
          help: 'Decode CPU time spent on refused bodies and events, charged to their clients (ADGATE_REFUSED_CPU_MS_PER_S)',
          registers,
        }),
    ),
    refusedWorkDelays: m(() => {
      const c = new Counter({
        name: 'adgate_refused_work_delays_total',
        help: 'Bodies of clients over their share of refused work: waited before decoding, or refused 429',
        labelNames: ['result'] as const,
        registers,
      })
      // Both results exported from the start, so a rate() over them has a series before the first.
      for (const result of ['waited', 'refused']) c.inc({ result }, 0)
      return c
    }),
    probationBodies: m(
      () =>
        new Counter({
          name: 'adgate_probation_bodies_total',
          help: 'Bodies decoded apart on one thread of their own: their client is on probation for refused work (over its share within the last 30 s), or its bodies in flight may cost more than its share (a burst)',
          registers,
        }),
    ),
  }
}

/** Decoder workers (observed once per task). */
function workerMetrics(m: Define, registers: Registry[]) {
  return {
    workerBusy: m(
      () =>
        new Counter({
          name: 'adgate_worker_busy_seconds_total',
          help: 'Thread time spent in decode tasks; rate / adgate_worker_threads = utilisation',
          registers,
        }),
    ),
    workerTasks: m(
      () =>
        new Counter({
          name: 'adgate_worker_tasks_total',
          help: 'Decode tasks (each carries the bodies of one event-loop turn), by result (ok, failed)',
          labelNames: ['result'] as const,
          registers,
        }),
    ),
  }
}

/** Kafka record batches, as the workers built them (observed once per task). */
function batchMetrics(m: Define, registers: Registry[]) {
  return {
    batchRecords: m(
      () =>
        new Histogram({
          name: 'adgate_kafka_batch_records',
          help: 'Records per Kafka record batch (one batch per partition per task)',
          buckets: [1, 10, 100, 1000, 5000, 20000],
          registers,
        }),
    ),
    batchBytes: m(
      () =>
        new Histogram({
          name: 'adgate_kafka_batch_bytes',
          help: 'Size of Kafka record batches as sent (LZ4-compressed)',
          buckets: [1024, 4096, 16384, 65536, 262144, 1048576, 4194304],
          registers,
        }),
    ),
    batchUncompressed: m(
      () =>
        new Counter({
          name: 'adgate_kafka_batch_uncompressed_bytes_total',
          help: 'Record bytes of the batches before LZ4 compression',
          registers,
        }),
    ),
    batchCompressed: m(
      () =>
        new Counter({
          name: 'adgate_kafka_batch_compressed_bytes_total',
          help: 'Record bytes of the batches after LZ4 compression (ratio: uncompressed / compressed)',
          registers,
        }),
    ),
  }
}

type Metrics = ReturnType<typeof requestMetrics> &
  ReturnType<typeof eventMetrics> &
  ReturnType<typeof qualityMetrics> &
  ReturnType<typeof workerMetrics> &
  ReturnType<typeof batchMetrics>

/** adgate_events_total and its companions for one (type, encoding), by what became of the events. */
export interface EventSeries {
  readonly accepted: CounterSeries
  readonly rejected: CounterSeries
  readonly failed: CounterSeries
  /** adgate_events_rejected_total{reason="INVALID_EVENT"} */
  readonly invalid: CounterSeries
  readonly deadLetters: CounterSeries
}

/** Verdicts of the data-quality rules for one (source, type). */
export interface QualitySeries {
  readonly passed: CounterSeries
  readonly flagged: CounterSeries
  readonly rejected: CounterSeries
}

/**
 * The series the request path and the task observer use, each made once: label sets by lookups in
 * nested Maps of the label values (no string built per call), the others ready.
 */
function seriesOf(m: Metrics) {
  return {
    bodyBytes: histogramSeries(m.bodyBytes),
    durableDuration: histogramSeries(m.durableDuration),
    batchRecords: histogramSeries(m.batchRecords),
    batchBytes: histogramSeries(m.batchBytes),
    batchUncompressed: counterSeries(m.batchUncompressed),
    batchCompressed: counterSeries(m.batchCompressed),
    workerBusy: counterSeries(m.workerBusy),
    tasksOk: counterSeries(m.workerTasks, { result: 'ok' }),
    tasksFailed: counterSeries(m.workerTasks, { result: 'failed' }),
    /** adgate_http_requests_total{route, status} */
    answered: memo2((route: string, status: number) => counterSeries(m.requests, { route, status })),
    /** adgate_request_duration_seconds{route, status_class}, by the status's class. */
    duration: memo2((route: string, status: number) =>
      histogramSeries(m.requestDuration, { route, status_class: statusClass(status) }),
    ),
    events: memo2(
      (type: string, encoding: string): EventSeries => ({
        accepted: counterSeries(m.events, { type, encoding, outcome: 'accepted' }),
        rejected: counterSeries(m.events, { type, encoding, outcome: 'rejected' }),
        failed: counterSeries(m.events, { type, encoding, outcome: 'failed' }),
        invalid: counterSeries(m.rejected, { type, encoding, reason: 'INVALID_EVENT' }),
        deadLetters: counterSeries(m.deadLetters, { type, encoding }),
      }),
    ),
    quality: memo2(
      (source: string, type: string): QualitySeries => ({
        passed: counterSeries(m.qualityEvents, { source, type, verdict: 'passed' }),
        flagged: counterSeries(m.qualityEvents, { source, type, verdict: 'flagged' }),
        rejected: counterSeries(m.qualityEvents, { source, type, verdict: 'rejected' }),
      }),
    ),
  }
}

export type GatewaySeries = ReturnType<typeof seriesOf>

/** Every series a no-op (metrics disabled). */
function noSeries(): GatewaySeries {
  const events: EventSeries = {
    accepted: NOOP_SERIES,
    rejected: NOOP_SERIES,
    failed: NOOP_SERIES,
    invalid: NOOP_SERIES,
    deadLetters: NOOP_SERIES,
  }
  const quality: QualitySeries = { passed: NOOP_SERIES, flagged: NOOP_SERIES, rejected: NOOP_SERIES }
  return {
    bodyBytes: NOOP_SERIES,
    durableDuration: NOOP_SERIES,
    batchRecords: NOOP_SERIES,
    batchBytes: NOOP_SERIES,
    batchUncompressed: NOOP_SERIES,
    batchCompressed: NOOP_SERIES,
    workerBusy: NOOP_SERIES,
    tasksOk: NOOP_SERIES,
    tasksFailed: NOOP_SERIES,
    answered: () => NOOP_SERIES,
    duration: () => NOOP_SERIES,
    events: () => events,
    quality: () => quality,
  }
}

/** make(a, b), made once per (a, b). */
function memo2<A, B, V>(make: (a: A, b: B) => V): (a: A, b: B) => V {
  const memo = new Map<A, Map<B, V>>()
  return (a, b) => memoized(memo, a, b, make)
}

/** Per worker task, on the main thread: batch sizes, compression and thread time, aggregated. */
export function observeTask(metrics: GatewayMetrics, result: TaskResult | null): void {
  const { series } = metrics
  if (result === null) {
    series.tasksFailed.inc()
    return
  }
  series.tasksOk.inc()
  series.workerBusy.inc(result.busyMs / 1000)
  if (result.batches.length === 0) return
  let compressed = 0
  for (const b of result.batches) {
    series.batchRecords.observe(b.records)
    series.batchBytes.observe(b.length)
    compressed += b.length - RECORD_BATCH_HEADER_BYTES
  }
  series.batchUncompressed.inc(result.rawBytes)
  series.batchCompressed.inc(compressed)
}

/** Stands in for every metric when metrics are disabled (bench only). */
const NOOP: unknown = {
  inc() {},
  dec() {},
  set() {},
  observe() {},
  remove() {},
  labels: () => NOOP,
}

/** "2xx", "4xx", "5xx" (the label of adgate_request_duration_seconds). */
export function statusClass(status: number): string {
  return status < 300 ? '2xx' : status < 400 ? '3xx' : status < 500 ? '4xx' : '5xx'
}

/** What the gateway's own scrape-time metrics read. */
export interface GatewayState {
  readonly workers: number
  readonly queueSize: () => number
  readonly inFlight: () => number
  readonly ready: () => boolean
  readonly warmUpSeconds: () => number
  /** Deliveries and their records made durable, per destination (gateway/delivery.ts). */
  readonly delivered: {
    readonly counts: Record<Destination, number>
    readonly records: Record<Destination, number>
  }
}

const DESTINATIONS: readonly Destination[] = ['kafka', 'spool']

/** The gateway's state at scrape time: workers, requests in flight, readiness, deliveries. */
export function registerGatewayState(registry: Registry, state: GatewayState): void {
  const gauge = (name: string, help: string, read: () => number) =>
    scrapedGauge(registry, { name, help }, read)
  gauge('adgate_worker_threads', 'Decoder worker threads (ADGATE_WORKERS)', () => state.workers)
  gauge(
    'adgate_worker_pool_queue_depth',
    'Bodies waiting for a decoder thread (lingering for the next task or queued)',
    state.queueSize,
  )
  gauge('adgate_http_requests_in_flight', 'HTTP event requests received and not yet answered', state.inFlight)
  gauge(
    'adgate_ready',
    '1 when the gateway accepts events (warmed up, Kafka or the spool writable, not draining), as /readyz',
    () => (state.ready() ? 1 : 0),
  )
  gauge(
    'adgate_warm_up_seconds',
    'How long the start-up warm-up took (ADGATE_WARMUP_MS); while it runs, how long so far (adgate_ready is 0 until it ends)',
    state.warmUpSeconds,
  )
  scrapedTotals(
    registry,
    {
      name: 'adgate_deliveries_total',
      help: 'Worker tasks whose batches were made durable, by destination (kafka, spool)',
      label: 'destination',
    },
    DESTINATIONS,
    (d) => state.delivered.counts[d],
  )
  scrapedTotals(
    registry,
    {
      name: 'adgate_delivered_records_total',
      help: 'Records (events and dead letters) made durable, by destination (kafka, spool)',
      label: 'destination',
    },
    DESTINATIONS,
    (d) => state.delivered.records[d],
  )
}
