import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/**
 * The gateway's metrics. Observed once per request or batch, never per event (an observation
 * costs hundreds of ns). Labels are bounded sets: route, status, type, encoding, outcome.
 */
export function createGatewayMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'adgate_' })
  const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  return {
    registry,
    requests: new Counter({
      name: 'adgate_http_requests_total',
      help: 'HTTP requests answered, by route and status',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
    events: new Counter({
      name: 'adgate_events_total',
      help: 'Events by type, encoding and outcome (accepted, rejected, dead_lettered, failed)',
      labelNames: ['type', 'encoding', 'outcome'] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'adgate_request_duration_seconds',
      help: 'From the first byte of the body to the answer, by route and status class',
      labelNames: ['route', 'status_class'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    durableDuration: new Histogram({
      name: 'adgate_ingest_to_ack_seconds',
      help: 'From receipt of a body to Kafka acknowledging its events (end-to-end durability latency)',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    bodyBytes: new Histogram({
      name: 'adgate_request_body_bytes',
      help: 'Request body size as received',
      buckets: [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304],
      registers: [registry],
    }),
    kafkaPendingBytes: new Gauge({
      name: 'adgate_kafka_pending_bytes',
      help: 'Bytes waiting for Kafka acknowledgement',
      registers: [registry],
    }),
    kafkaErrors: new Gauge({
      name: 'adgate_kafka_produce_errors',
      help: 'Failed produce batches since start',
      registers: [registry],
    }),
    workerUtilization: new Gauge({
      name: 'adgate_worker_pool_utilization',
      help: 'Busy share of decoder threads (0..1)',
      registers: [registry],
    }),
    workerQueue: new Gauge({
      name: 'adgate_worker_pool_queue_depth',
      help: 'Decode requests waiting for a thread',
      registers: [registry],
    }),
    spoolBytes: new Gauge({
      name: 'adgate_spool_bytes',
      help: 'Bytes of batches in the local spool',
      registers: [registry],
    }),
    spoolRecords: new Gauge({
      name: 'adgate_spool_events',
      help: 'Events in the local spool',
      registers: [registry],
    }),
    spoolOldestAge: new Gauge({
      name: 'adgate_spool_oldest_age_seconds',
      help: 'Age of the oldest spooled batch (0 when empty)',
      registers: [registry],
    }),
    spoolReplayed: new Counter({
      name: 'adgate_spool_replayed_events_total',
      help: 'Events replayed from the spool into Kafka',
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'adgate_deliveries_total',
      help: 'Batches of requests made durable, by destination (kafka, spool)',
      labelNames: ['destination'] as const,
      registers: [registry],
    }),
    wsConnections: new Gauge({
      name: 'adgate_websocket_connections',
      help: 'Open /v1/stream connections',
      registers: [registry],
    }),
  }
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>

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
