import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { ANOMALY_METRICS } from './anomaly-options.js'
import type { BatchStats, PartitionLag } from './correlator.js'
import { JOIN_RESULTS, JOINS } from './output.js'

/** The correlator's Prometheus metrics: observed once per batch, never per event. */
export function createCorrelatorMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'adgate_correlator_' })
  const registers = [registry]
  const events = new Counter({
    name: 'adgate_correlator_events_total',
    help: 'Events taken into the joins (replays after a restart not included)',
    registers,
  })
  const late = new Counter({
    name: 'adgate_correlator_late_events_total',
    help: 'Events older than their partition watermark: written to late_events, not counted',
    registers,
  })
  const duplicates = new Counter({
    name: 'adgate_correlator_duplicate_events_total',
    help: 'Events dropped as duplicates of an event id already taken',
    registers,
  })
  const undecodable = new Counter({
    name: 'adgate_correlator_undecodable_total',
    help: 'Records that are not valid adgate events (skipped)',
    registers,
  })
  const retentionGap = new Counter({
    name: 'adgate_correlator_retention_gap_records_total',
    help: 'Records deleted by Kafka retention before this instance read them: skipped, never joined or counted',
    registers,
  })
  const writeSeconds = new Histogram({
    name: 'adgate_correlator_write_seconds',
    help: 'Duration of one atomic storage write (facts, counters, positions, checkpoints)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  })
  const lagSeconds = new Histogram({
    name: 'adgate_correlator_lag_seconds',
    help: 'From the oldest record of a batch being appended to Kafka to its effects being stored',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  })
  const openKeys = new Gauge({
    name: 'adgate_correlator_open_keys',
    help: 'Join keys held in memory (waiting for a partner or inside their window)',
    registers,
  })
  const checkpoints = new Counter({
    name: 'adgate_correlator_checkpoints_total',
    help: 'Partition state checkpoints written',
    registers,
  })
  const joins = new Counter({
    name: 'adgate_correlator_joins_total',
    help: 'Events waiting in a join, by what became of them: matched, outside_window (the partner came too late or too early) or expired (no partner before the watermark)',
    labelNames: ['join', 'result'] as const,
    registers,
  })
  for (const join of JOINS) for (const result of JOIN_RESULTS) joins.inc({ join, result }, 0)

  // Partition lag is read at scrape time: one call to the source for both gauges. When the brokers
  // do not answer within 2 s the lag series are left out, so the rest of the scrape still works.
  let lagOf: () => Promise<PartitionLag[]> = async () => []
  let lagRead: { at: number; lags: Promise<PartitionLag[]> } | null = null
  const lagNow = (): Promise<PartitionLag[]> => {
    const now = Date.now()
    if (lagRead === null || now - lagRead.at > 1000) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<PartitionLag[]>((resolve) => {
        timer = setTimeout(() => resolve([]), 2000)
      })
      const lags = lagOf().catch(() => [])
      lagRead = { at: now, lags: Promise.race([lags, timeout]).finally(() => clearTimeout(timer)) }
    }
    return lagRead.lags
  }
  const lagGauge = (name: string, help: string, pick: (l: PartitionLag) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['topic', 'partition'] as const,
      registers,
      async collect() {
        this.reset()
        for (const l of await lagNow()) this.set({ topic: l.topic, partition: String(l.partition) }, pick(l))
      },
    })
  lagGauge(
    'adgate_correlator_partition_lag_records',
    'Records appended to an input partition this instance owns and not yet read',
    (l) => l.records,
  )
  lagGauge(
    'adgate_correlator_partition_lag_seconds',
    'How long ago the last record read from a partition was appended, while records wait behind it (0 when caught up)',
    (l) => l.seconds,
  )

  const anomalies = new Counter({
    name: 'adgate_correlator_anomalies_total',
    help: 'Anomalies flagged by the detector (campaign and source baselines, source clustering), by metric',
    labelNames: ['metric'] as const,
    registers,
  })
  // Every metric's series exists from the start (a bounded set), so increase() sees the first.
  for (const metric of ANOMALY_METRICS) anomalies.inc({ metric }, 0)
  return {
    registry,
    /** Where the lag gauges read from (the running correlator). */
    lagFrom(read: () => Promise<PartitionLag[]>): void {
      lagOf = read
      lagRead = null
    },
    /** Records of an offset gap (the source read on past records deleted by retention). */
    gap(records: number): void {
      retentionGap.inc(records)
    },
    observe(s: BatchStats): void {
      for (const metric of s.anomalies) anomalies.inc({ metric })
      for (const join of JOINS)
        for (const result of JOIN_RESULTS) {
          const n = s.joins[join][result]
          if (n > 0) joins.inc({ join, result }, n)
        }
      events.inc(s.events)
      late.inc(s.late)
      duplicates.inc(s.duplicates)
      undecodable.inc(s.undecodable)
      writeSeconds.observe(s.writeMs / 1000)
      if (!Number.isNaN(s.lagMs)) lagSeconds.observe(s.lagMs / 1000)
      openKeys.set(s.openKeys)
      checkpoints.inc(s.checkpoints)
    },
  }
}

export type CorrelatorMetrics = ReturnType<typeof createCorrelatorMetrics>
