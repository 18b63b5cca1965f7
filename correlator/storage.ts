import type { BatchOutput } from './output.js'
import type { Position } from './source.js'

// The correlator's storage contract is this file and rows.ts: storage/ (the adapters) imports
// nothing else of the correlator, and the correlator imports nothing of storage/.
export { HOUR_MS } from './rules.js'
export { type Position, tpKey } from './source.js'

/**
 * Where the correlator's tables live. Every sink keeps the same tables (storage/schema.ts) and the
 * same guarantees:
 * - one `write` is atomic: facts, counter deltas, late events, input positions and state
 *   checkpoints commit together or not at all, so a crash anywhere leaves tables and positions
 *   consistent and a restart neither loses nor double-counts;
 * - facts are upserted by their natural id;
 * - `expected` fences a stale owner: if a position moved since this instance read it (another
 *   instance took the partition over), the write fails with StaleOwnerError and nothing changes.
 */
export interface WriteBatch {
  output: BatchOutput
  /** Next offsets after this batch. */
  positions: Position[]
  /** What this instance believes is stored for those topic-partitions (null: nothing yet). */
  expected: Map<string, string | null>
  checkpoints: Checkpoint[]
}

export interface Checkpoint {
  partition: number
  /** v8-serialized join state of the partition (correlator/pipeline.ts). */
  state: Buffer
  /** Input positions the state reflects: a restart re-reads from here. */
  positions: Position[]
}

export interface PartitionLoad {
  checkpoint: Checkpoint | null
  /** Stored next offsets, by tpKey(topic, partition). */
  positions: Map<string, string>
}

export type Granularity = 'minute' | 'hour'

export interface StatsQuery {
  campaign?: string
  /** Epoch ms, inclusive. */
  from?: number
  /** Epoch ms, exclusive. */
  to?: number
  granularity: Granularity
}

export interface StatsRow {
  campaign_id: string
  /** Bucket start, ISO-8601 UTC. */
  bucket: string
  bids: number
  wins: number
  impressions: number
  clicks: number
  clicks_valid: number
  clicks_invalid: number
  conversions: number
  conversion_value_micros: number
  spend_micros: number
  /** clicks_valid / impressions; null without impressions. */
  ctr: number | null
  /** conversions / clicks_valid; null without valid clicks. */
  cvr: number | null
  /** wins / bids; null without bids. */
  win_rate: number | null
}

export interface Storage {
  readonly kind: string
  load(partition: number, topics: readonly string[]): Promise<PartitionLoad>
  write(batch: WriteBatch): Promise<void>
  stats(query: StatsQuery): Promise<StatsRow[]>
  close(): Promise<void>
}

export class StaleOwnerError extends Error {
  constructor(readonly tp: string) {
    super(`position of ${tp} moved: another correlator instance owns it now`)
  }
}

/** Counter sums → the row users see (ratios computed once, here). */
export function statsRow(campaign: string, bucket: number, v: Record<string, number>): StatsRow {
  const ratio = (a: number, b: number) => (b > 0 ? a / b : null)
  return {
    campaign_id: campaign,
    bucket: new Date(bucket).toISOString(),
    bids: v.bids ?? 0,
    wins: v.wins ?? 0,
    impressions: v.impressions ?? 0,
    clicks: v.clicks ?? 0,
    clicks_valid: v.clicks_valid ?? 0,
    clicks_invalid: v.clicks_invalid ?? 0,
    conversions: v.conversions ?? 0,
    conversion_value_micros: v.conversion_value_micros ?? 0,
    spend_micros: v.spend_micros ?? 0,
    ctr: ratio(v.clicks_valid ?? 0, v.impressions ?? 0),
    cvr: ratio(v.conversions ?? 0, v.clicks_valid ?? 0),
    win_rate: ratio(v.wins ?? 0, v.bids ?? 0),
  }
}
