// Declaration mirrored in storage/memory.ts: both take the same row types from correlator/rows.ts.
import {
  AGG_FIELDS,
  type AggDelta,
  type AnomalyRow,
  type ClickRow,
  type ConversionRow,
  type ImpressionRow,
  type LateRow,
  type RawEvent,
  type Stage,
} from './rows.js'
import { HOUR_MS, MINUTE_MS } from './rules.js'

/** The three joins, and what became of the events waiting in them, for the metrics. */
export const JOINS = ['bid_impression', 'impression_click', 'click_conversion'] as const
export type JoinName = (typeof JOINS)[number]
/**
 * matched: joined its partner; outside_window: the partner came, but outside the window;
 * expired: no partner came before the watermark passed (an impression without its bid, a click
 * without its impression, a conversion without its click).
 */
export const JOIN_RESULTS = ['matched', 'outside_window', 'expired'] as const
export type JoinResult = (typeof JOIN_RESULTS)[number]
export type JoinCounts = Record<JoinName, Record<JoinResult, number>>

export function emptyJoinCounts(): JoinCounts {
  const zero = () => ({ matched: 0, outside_window: 0, expired: 0 })
  return { bid_impression: zero(), impression_click: zero(), click_conversion: zero() }
}

/**
 * Collects what one batch produces. Facts are kept last-write-wins per key (a row restated twice
 * in a batch is written once); counter deltas are summed per (stage, partition, campaign, bucket).
 *
 * `discard` is set while records are re-read to rebuild state after a restart: their effects are
 * already in storage, so they change state but write nothing.
 */
export class BatchOutput {
  discard = false
  readonly impressions = new Map<string, ImpressionRow>()
  /**
   * Impressions of this batch restated after their first statement (a bid joined later), which
   * an earlier batch may have stored. The rest are first statements, as a rule not stored yet:
   * storage may insert them without an upsert (storage/duckdb.ts), falling back to the upsert
   * when one is stored after all (a replay from offset 0, an impression id sent twice).
   */
  readonly restated = new Set<string>()
  readonly clicks = new Map<string, ClickRow>()
  readonly conversions = new Map<string, ConversionRow>()
  readonly late: LateRow[] = []
  /** Every event taken in, for the raw tables (only when the correlator keeps them). */
  readonly raw: RawEvent[] = []
  /** Flagged by the anomaly detector when buckets closed during this batch. */
  readonly anomalies: AnomalyRow[] = []
  readonly minute = new Map<string, AggDelta>()
  readonly hour = new Map<string, AggDelta>()
  /** Events taken in (live, not replayed) and the subset found late or duplicate: for metrics. */
  events = 0
  lateCount = 0
  duplicates = 0
  readonly joins = emptyJoinCounts()
  /**
   * The rows the last count() added to: an event counts several fields of the same rows in a
   * row (bids and quality events, impressions, spend...), and looking them up again costs a key
   * string and a hash per call.
   */
  private lastStage = 0
  private lastPartition = 0
  private lastCampaign = ''
  private lastTime = Number.NaN
  private lastMinute: number[] = []
  private lastHour: number[] = []

  impression(row: ImpressionRow, restated = false): void {
    if (this.discard) return
    this.impressions.set(row.impression_id, row)
    if (restated) this.restated.add(row.impression_id)
  }

  click(row: ClickRow): void {
    if (!this.discard) this.clicks.set(row.click_id, row)
  }

  conversion(row: ConversionRow): void {
    if (!this.discard) this.conversions.set(row.conversion_id, row)
  }

  lateEvent(row: LateRow): void {
    if (this.discard) return
    this.late.push(row)
    this.lateCount++
  }

  rawEvent(row: RawEvent): void {
    if (!this.discard) this.raw.push(row)
  }

  duplicate(): void {
    if (!this.discard) this.duplicates++
  }

  /** Not for replayed records; expiries (checked after every batch) count whatever the batch was. */
  joined(join: JoinName, result: JoinResult, n = 1): void {
    if (!this.discard) this.joins[join][result] += n
  }

  /** Adds `delta` to counter `field` (an index into AGG_FIELDS) of the event's minute and hour. */
  count(stage: Stage, partition: number, campaign: string, time: number, field: number, delta: number): void {
    if (this.discard || delta === 0) return
    if (
      time !== this.lastTime ||
      campaign !== this.lastCampaign ||
      stage !== this.lastStage ||
      partition !== this.lastPartition
    ) {
      const minute = time - (((time % MINUTE_MS) + MINUTE_MS) % MINUTE_MS)
      const hour = time - (((time % HOUR_MS) + HOUR_MS) % HOUR_MS)
      this.lastMinute = row(this.minute, stage, partition, campaign, minute)
      this.lastHour = row(this.hour, stage, partition, campaign, hour)
      this.lastStage = stage
      this.lastPartition = partition
      this.lastCampaign = campaign
      this.lastTime = time
    }
    this.lastMinute[field]! += delta
    this.lastHour[field]! += delta
  }

  get empty(): boolean {
    return (
      this.impressions.size === 0 &&
      this.clicks.size === 0 &&
      this.conversions.size === 0 &&
      this.late.length === 0 &&
      this.raw.length === 0 &&
      this.anomalies.length === 0 &&
      this.minute.size === 0
    )
  }
}

/** The counters of (stage, partition, campaign, bucket), created at zero. */
function row(
  map: Map<string, AggDelta>,
  stage: Stage,
  partition: number,
  campaign: string,
  bucket: number,
): number[] {
  const key = `${stage}\u0000${partition}\u0000${bucket}\u0000${campaign}`
  let row = map.get(key)
  if (row === undefined) {
    row = { stage, partition, campaign_id: campaign, bucket, values: new Array(AGG_FIELDS.length).fill(0) }
    map.set(key, row)
  }
  return row.values
}
