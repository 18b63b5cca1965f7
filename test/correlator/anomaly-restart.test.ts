// Slow suite (simulated hours of traffic, seconds of CPU per test): npm test runs it, npm run test:unit does not.
// Anomaly baselines survive a restart: the detector rides in the correlator's checkpoints, so a
// correlator killed (as kill -9) just before an injected anomaly and restarted from its checkpoints
// still flags it — with baselines relearnt from scratch it would be blind for its warm-up (10
// buckets, 50 minutes here) — and a clean run killed mid-way raises no flag from replayed events.
import { describe, expect, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import type { AnomalyRow } from '../../correlator/rows.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import type { EventType } from '../../events/catalog.js'
import { type AnomalyLabel, generateSourcedTraffic, scoreFlags } from '../../generator/anomalies.js'
import type { Event } from '../../generator/events.js'
import { MemoryStorage } from '../../storage/memory.js'
import { ArraySource, runToEnd } from '../support/array-source.js'
import { type Logs, toLogs } from '../support/funnel-records.js'

const BUCKET = 5 * 60_000
const SOURCES = ['ssp-a', 'ssp-b', 'ssp-c', 'ssp-d', 'ssp-e', 'ssp-f']
const START = Date.UTC(2026, 10, 1)
const SPAN = 4 * 3_600_000
// One partition per topic: the detector closes a bucket once every event type has moved past it,
// and topics read at their own pace are what it is built for.
const PARTITIONS = 1

function traffic(seed: number, injected: boolean): { logs: Logs; labels: AnomalyLabel[] } {
  const { events, labels } = generateSourcedTraffic({
    seed,
    bids: 200_000,
    spanMs: SPAN,
    start: START,
    sources: SOURCES,
    anomalies: injected ? ['click_flood', 'ctr_spike', 'stale_source'] : [],
  })
  const typed = events.map((e) => ({ type: e.type as EventType, event: e.event as unknown as Event }))
  return { logs: toLogs(typed, PARTITIONS), labels }
}

/** The batch after which the source has handed out `share` of the records (the source is deterministic). */
async function batchAtShare(logs: Logs, seed: number, share: number): Promise<number> {
  let total = 0
  for (const l of logs.values()) total += l.length
  const dry = new ArraySource(logs, seed, PARTITIONS)
  let seen = 0
  let at = 0
  await dry.start({
    onBatch: async (batch) => {
      seen += batch.length
      if (at === 0 && seen >= share * total) at = dry.batches
    },
  })
  return at
}

/** Runs the logs through correlators with anomaly detection, killed after each of `killAfter` batches. */
async function run(logs: Logs, seed: number, killAfter: number[]): Promise<AnomalyRow[]> {
  const storage = new MemoryStorage()
  let committed: Map<string, number> | undefined
  let t = 0
  for (const [i, n] of [...killAfter, Number.POSITIVE_INFINITY].entries()) {
    const source = new ArraySource(logs, seed + i, PARTITIONS, n, committed)
    const c = new Correlator(
      {
        rules: DEFAULT_RULES,
        storage,
        source,
        checkpointMs: 2000,
        idleMs: 1e12,
        now: () => t++,
        anomalies: { bucketMs: BUCKET, closeAfterMs: 2 * BUCKET },
      },
      PARTITIONS,
    )
    await runToEnd(c)
    committed = source.committed
  }
  return [...storage.anomalies.values()]
}

describe('anomaly baselines across a restart', () => {
  it('a correlator killed just before a click flood and restarted still flags it (precision, recall ≥ 0.9)', async () => {
    const { logs, labels } = traffic(11, true)
    const flood = labels.find((l) => l.kind === 'click_flood')!
    // Killed a few minutes of traffic before the flood starts.
    const kill = await batchAtShare(logs, 11, (flood.from - START - 5 * 60_000) / SPAN)
    const flags = await run(logs, 11, [kill])
    const score = scoreFlags(flags, labels, BUCKET)
    expect(score.recall, JSON.stringify(score)).toBeGreaterThanOrEqual(0.9)
    expect(score.precision, JSON.stringify(score)).toBeGreaterThanOrEqual(0.9)
    expect(flags.some((f) => f.subject === flood.subject && f.metric === 'volume.click')).toBe(true)
  }, 120_000)

  it('a clean run killed twice raises no flag (replayed events are not counted twice)', async () => {
    const { logs } = traffic(21, false)
    const flags = await run(logs, 21, [
      await batchAtShare(logs, 21, 0.3),
      await batchAtShare(logs, 22, 0.4), // the second source's seed; roughly 0.3 + 0.4 of what is left
    ])
    expect(flags).toEqual([])
  }, 120_000)
})
