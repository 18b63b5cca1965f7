import type { Registry } from 'prom-client'
import { scrapedGauge, scrapedTotal } from '../config/scraped-metrics.js'
import type { Replayer } from './replayer.js'
import type { Spool } from './spool.js'

/** The local spool's metrics, read from the spool and the replayer at scrape time (0 without them). */
export function registerSpoolMetrics(
  registry: Registry,
  maxBytes: number,
  spool: Spool | null,
  replayer: Replayer | null,
): void {
  const gauge = (name: string, help: string, read: () => number) =>
    scrapedGauge(registry, { name, help }, read)
  gauge('adgate_spool_bytes', 'Bytes of batches in the local spool', () => spool?.bytes ?? 0)
  gauge('adgate_spool_max_bytes', 'Spool capacity (ADGATE_SPOOL_MAX_BYTES; 0 = no spool)', () => maxBytes)
  gauge(
    'adgate_spool_events',
    'Records (events and dead letters) in the local spool',
    () => spool?.records ?? 0,
  )
  gauge('adgate_spool_oldest_age_seconds', 'Age of the oldest spooled batch (0 when empty)', () => {
    const oldest = spool?.oldest ?? null
    return oldest === null ? 0 : (Date.now() - oldest) / 1000
  })
  gauge(
    'adgate_spool_quarantined_events',
    'Acknowledged records Kafka refused for good, kept in the spool quarantine (retried every minute; adgate spool export)',
    () => spool?.quarantinedRecords ?? 0,
  )
  scrapedTotal(
    registry,
    {
      name: 'adgate_spool_replayed_events_total',
      help: 'Spooled records replayed into Kafka and acknowledged',
    },
    () => replayer?.stats.records ?? 0,
  )
  scrapedTotal(
    registry,
    {
      name: 'adgate_spool_dropped_events_total',
      help: 'Spooled records dropped without reaching Kafka (their batch failed its CRC): lost',
    },
    () => replayer?.stats.dropped ?? 0,
  )
}
