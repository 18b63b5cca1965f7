import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

export interface GatewayMetricsOptions {
  /** Register the Kafka producer's metrics (false in embedded mode, where there is no Kafka). */
  readonly kafka?: boolean
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
 * totals kept elsewhere (Kafka producer, spool, replayer) are read at scrape time. Labels are
 * bounded sets: route, status, status_class, type, encoding, outcome, reason (an error code),
 * destination, result. Never an id, a key or a key's name.
 */
export function createGatewayMetrics(options: GatewayMetricsOptions = {}) {
  const on = options.enabled !== false
  const registry = new Registry()
  if (on) collectDefaultMetrics({ register: registry, prefix: 'adgate_' })
  const registers = [registry]
  const kafkaRegisters = options.kafka === false ? [] : registers
  const m = <T>(create: () => T): T => (on ? create() : (NOOP as T))
  const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  return {
    registry,
    // ---- traffic
    requests: m(
      () =>
        new Counter({
          name: 'adgate_http_requests_total',
          help: 'HTTP requests to the event routes answered, by route and status code',
          labelNames: ['route', 'status'] as const,
          registers,
        }),
    ),
    requestsInFlight: m(
      () =>
        new Gauge({
          name: 'adgate_http_requests_in_flight',
          help: 'HTTP event requests received and not yet answered',
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
    // ---- events
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
    // ---- data quality (quality/): per request; source is an API key name (a bounded set from config)
    qualityEvents: m(
      () =>
        new Counter({
          name: 'adgate_quality_events_total',
          help: 'Schema-valid events checked by the data-quality rules, by source (API key name), type and verdict: passed, flagged, rejected',
          labelNames: ['source', 'type', 'verdict'] as const,
          registers,
        }),
    ),
    qualityScore: m(
      () =>
        new Gauge({
          name: 'adgate_quality_score',
          help: 'Share of checked events that passed every rule over the window (1m, 1h), by source and type; absent without events in the window',
          labelNames: ['source', 'type', 'window'] as const,
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
    // ---- decoder workers (observed once per task)
    workerThreads: m(
      () =>
        new Gauge({
          name: 'adgate_worker_threads',
          help: 'Decoder worker threads (ADGATE_WORKERS)',
          registers,
        }),
    ),
    workerBusy: m(
      () =>
        new Counter({
          name: 'adgate_worker_busy_seconds_total',
          help: 'Thread time spent in decode tasks; rate / adgate_worker_threads = utilisation',
          registers,
        }),
    ),
    workerQueue: m(
      () =>
        new Gauge({
          name: 'adgate_worker_pool_queue_depth',
          help: 'Bodies waiting for a decoder thread (lingering for the next task or queued)',
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
    // ---- Kafka record batches, as the workers built them (observed once per task)
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
    // ---- Kafka producer (read at scrape time; absent in embedded mode)
    kafkaReady: m(
      () =>
        new Gauge({
          name: 'adgate_kafka_ready',
          help: '1 when Kafka answers and the bytes waiting for it are under ADGATE_MAX_PENDING_BYTES',
          registers: kafkaRegisters,
        }),
    ),
    kafkaPendingBytes: m(
      () =>
        new Gauge({
          name: 'adgate_kafka_pending_bytes',
          help: 'Bytes sent or being sent to Kafka and not yet acknowledged',
          registers: kafkaRegisters,
        }),
    ),
    kafkaInFlight: m(
      () =>
        new Gauge({
          name: 'adgate_kafka_in_flight_requests',
          help: 'Produce requests waiting for their response (at most ADGATE_MAX_IN_FLIGHT)',
          registers: kafkaRegisters,
        }),
    ),
    kafkaRequests: m(
      () =>
        new Counter({
          name: 'adgate_kafka_produce_requests_total',
          help: 'Produce requests answered by a broker',
          registers: kafkaRegisters,
        }),
    ),
    kafkaErrors: m(
      () =>
        new Counter({
          name: 'adgate_kafka_produce_errors_total',
          help: 'Sends Kafka did not acknowledge (timed out after retries, or refused)',
          registers: kafkaRegisters,
        }),
    ),
    kafkaPossibleDuplicates: m(
      () =>
        new Counter({
          name: 'adgate_kafka_possible_duplicate_records_total',
          help: 'Records that may reach Kafka twice: spooled while their direct send was still pending, or re-sent under a new producer id after an attempt without an answer (consumers dedup by event_id)',
          registers: kafkaRegisters,
        }),
    ),
    kafkaRecords: m(
      () =>
        new Counter({
          name: 'adgate_kafka_acknowledged_records_total',
          help: 'Records acknowledged by Kafka (acks=all), spool replays included',
          registers: kafkaRegisters,
        }),
    ),
    kafkaBytes: m(
      () =>
        new Counter({
          name: 'adgate_kafka_acknowledged_bytes_total',
          help: 'Record batch bytes acknowledged by Kafka, spool replays included',
          registers: kafkaRegisters,
        }),
    ),
    // ---- durability: where batches went, and the spool
    deliveries: m(
      () =>
        new Counter({
          name: 'adgate_deliveries_total',
          help: 'Worker tasks whose batches were made durable, by destination (kafka, spool)',
          labelNames: ['destination'] as const,
          registers,
        }),
    ),
    deliveredRecords: m(
      () =>
        new Counter({
          name: 'adgate_delivered_records_total',
          help: 'Records (events and dead letters) made durable, by destination (kafka, spool)',
          labelNames: ['destination'] as const,
          registers,
        }),
    ),
    spoolBytes: m(
      () =>
        new Gauge({
          name: 'adgate_spool_bytes',
          help: 'Bytes of batches in the local spool',
          registers,
        }),
    ),
    spoolMaxBytes: m(
      () =>
        new Gauge({
          name: 'adgate_spool_max_bytes',
          help: 'Spool capacity (ADGATE_SPOOL_MAX_BYTES; 0 = no spool)',
          registers,
        }),
    ),
    spoolRecords: m(
      () =>
        new Gauge({
          name: 'adgate_spool_events',
          help: 'Records (events and dead letters) in the local spool',
          registers,
        }),
    ),
    spoolOldestAge: m(
      () =>
        new Gauge({
          name: 'adgate_spool_oldest_age_seconds',
          help: 'Age of the oldest spooled batch (0 when empty)',
          registers,
        }),
    ),
    spoolReplayed: m(
      () =>
        new Counter({
          name: 'adgate_spool_replayed_events_total',
          help: 'Spooled records replayed into Kafka and acknowledged',
          registers,
        }),
    ),
    spoolDropped: m(
      () =>
        new Counter({
          name: 'adgate_spool_dropped_events_total',
          help: 'Spooled records dropped without reaching Kafka (failed CRC, or Kafka refused them): lost',
          registers,
        }),
    ),
    ready: m(
      () =>
        new Gauge({
          name: 'adgate_ready',
          help: '1 when the gateway accepts events (Kafka or the spool writable, not draining), as /readyz',
          registers,
        }),
    ),
  }
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>

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

/** Bring a counter up to a running total kept elsewhere (read at scrape time). */
export function advanceTo(
  counter: Counter<string>,
  total: number,
  labels: Record<string, string> = {},
): void {
  const key = JSON.stringify(labels)
  const last = lastTotals.get(counter)?.get(key) ?? 0
  if (total > last) counter.inc(labels, total - last)
  let byLabels = lastTotals.get(counter)
  if (!byLabels) {
    byLabels = new Map()
    lastTotals.set(counter, byLabels)
  }
  byLabels.set(key, total)
}

const lastTotals = new WeakMap<Counter<string>, Map<string, number>>()
