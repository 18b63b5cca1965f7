// Declaration mirrored in correlator/output.ts (the same row types) and in storage/duckdb.ts, storage/postgres.ts
// (each adapter implements the correlator's Storage).
import {
  AGG_FIELDS,
  type AnomalyRow,
  type ClickRow,
  type ConversionRow,
  type ImpressionRow,
  type LateRow,
  type RawEvent,
} from '../correlator/rows.js'
import {
  type Checkpoint,
  type PartitionLoad,
  StaleOwnerError,
  type StatsQuery,
  type StatsRow,
  type Storage,
  statsRow,
  tpKey,
  type WriteBatch,
} from '../correlator/storage.js'

/**
 * The same tables in process memory: for unit tests of the joins and as the no-I/O case of the
 * benchmark. Not durable.
 */
export class MemoryStorage implements Storage {
  readonly kind = 'memory'
  readonly impressions = new Map<string, ImpressionRow>()
  readonly clicks = new Map<string, ClickRow>()
  readonly conversions = new Map<string, ConversionRow>()
  readonly late = new Map<string, LateRow>()
  /** The raw tables' records, by type:partition:offset (decoding them is the SQL sinks' part). */
  readonly raw = new Map<string, RawEvent>()
  /** By metric, subject and bucket. */
  readonly anomalies = new Map<string, AnomalyRow>()
  /** (campaign, bucket) → counters summed over stages and partitions. */
  readonly minute = new Map<string, number[]>()
  readonly hour = new Map<string, number[]>()
  readonly positions = new Map<string, string>()
  readonly checkpoints = new Map<number, Checkpoint>()

  async load(partition: number, topics: readonly string[]): Promise<PartitionLoad> {
    const positions = new Map<string, string>()
    for (const t of topics) {
      const v = this.positions.get(tpKey(t, partition))
      if (v !== undefined) positions.set(tpKey(t, partition), v)
    }
    return { checkpoint: this.checkpoints.get(partition) ?? null, positions }
  }

  async write(batch: WriteBatch): Promise<void> {
    for (const [tp, expected] of batch.expected)
      if ((this.positions.get(tp) ?? null) !== expected) throw new StaleOwnerError(tp)
    const o = batch.output
    for (const r of o.impressions.values()) this.impressions.set(r.impression_id, r)
    for (const r of o.clicks.values()) this.clicks.set(r.click_id, r)
    for (const r of o.conversions.values()) this.conversions.set(r.conversion_id, r)
    for (const r of o.late) this.late.set(`${r.topic}:${r.partition}:${r.offset}`, r)
    for (const r of o.raw) this.raw.set(`${r.type}:${r.partition}:${r.offset}`, r)
    for (const a of o.anomalies) this.anomalies.set(`${a.metric}\u0000${a.subject}\u0000${a.bucket}`, a)
    for (const [target, deltas] of [
      [this.minute, o.minute],
      [this.hour, o.hour],
    ] as const) {
      for (const d of deltas.values()) {
        const key = `${d.campaign_id}\u0000${d.bucket}`
        let v = target.get(key)
        if (v === undefined) {
          v = new Array(AGG_FIELDS.length).fill(0)
          target.set(key, v)
        }
        for (let i = 0; i < AGG_FIELDS.length; i++) v[i]! += d.values[i]!
      }
    }
    for (const p of batch.positions) this.positions.set(tpKey(p.topic, p.partition), p.offset)
    for (const c of batch.checkpoints) this.checkpoints.set(c.partition, c)
  }

  async stats(q: StatsQuery): Promise<StatsRow[]> {
    const rows: StatsRow[] = []
    for (const [key, v] of q.granularity === 'minute' ? this.minute : this.hour) {
      const [campaign, b] = key.split('\u0000') as [string, string]
      const bucket = Number(b)
      if (q.campaign !== undefined && campaign !== q.campaign) continue
      if (q.from !== undefined && bucket < q.from) continue
      if (q.to !== undefined && bucket >= q.to) continue
      rows.push(statsRow(campaign, bucket, Object.fromEntries(AGG_FIELDS.map((f, i) => [f, v[i]!]))))
    }
    return rows.sort((a, b) => a.bucket.localeCompare(b.bucket) || a.campaign_id.localeCompare(b.campaign_id))
  }

  async close(): Promise<void> {}
}
