import type { Registry } from 'prom-client'
import { scrapedGauge, scrapedTotal } from '../config/scraped-metrics.js'
import type { BatchSink } from './batch-sink.js'

/**
 * The Kafka producer's metrics (absent in embedded mode), read from the sink at scrape time.
 * `possibleDuplicates` adds the records the delivery spooled while their direct send was pending.
 */
export function registerProducerMetrics(
  registry: Registry,
  sink: BatchSink,
  possibleDuplicates: () => number,
): void {
  const gauge = (name: string, help: string, read: () => number) =>
    scrapedGauge(registry, { name, help }, read)
  const total = (name: string, help: string, read: () => number) =>
    scrapedTotal(registry, { name, help }, read)
  gauge(
    'adgate_kafka_ready',
    '1 when Kafka answers and the bytes waiting for it are under ADGATE_MAX_PENDING_BYTES',
    () => (sink.ready ? 1 : 0),
  )
  gauge(
    'adgate_kafka_pending_bytes',
    'Bytes sent or being sent to Kafka and not yet acknowledged',
    () => sink.bufferedBytes,
  )
  gauge(
    'adgate_kafka_in_flight_requests',
    'Produce requests waiting for their response',
    () => sink.inFlightRequests,
  )
  total(
    'adgate_kafka_produce_requests_total',
    'Produce requests answered by a broker',
    () => sink.stats.requests,
  )
  total(
    'adgate_kafka_record_batches_total',
    "Record batches acknowledged by Kafka (one per partition per Produce request; a merged batch carries several requests' records)",
    () => sink.stats.batches,
  )
  total(
    'adgate_kafka_produce_errors_total',
    'Sends Kafka did not acknowledge (timed out after retries, or refused)',
    () => sink.stats.errors,
  )
  total(
    'adgate_kafka_possible_duplicate_records_total',
    'Records that may reach Kafka twice: spooled while their direct send was still pending, or re-sent under a new producer id after an attempt without an answer (consumers dedup by event_id)',
    () => sink.stats.possibleDuplicates + possibleDuplicates(),
  )
  total(
    'adgate_kafka_acknowledged_records_total',
    'Records acknowledged by Kafka (acks=all), spool replays included',
    () => sink.stats.records,
  )
  total(
    'adgate_kafka_acknowledged_bytes_total',
    'Record batch bytes acknowledged by Kafka, spool replays included',
    () => sink.stats.bytes,
  )
}
