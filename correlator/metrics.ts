import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { BatchStats } from './correlator.js'

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
  return {
    registry,
    observe(s: BatchStats): void {
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
