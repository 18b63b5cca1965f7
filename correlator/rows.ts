// Declaration mirrored in correlator/events.ts: a row's fields as written, an event's as read (the same names by design).
/**
 * What the correlator writes: fact rows keyed by their natural id (upserted, so a restatement
 * replaces the row) and per-campaign counters. Times are epoch milliseconds.
 */
export interface ImpressionRow {
  impression_id: string
  event_id: string
  auction_id: string
  campaign_id: string
  creative_id: string | null
  publisher_id: string | null
  site_domain: string | null
  device_type: string | null
  country: string | null
  impression_time: number
  cost_micros: number
  /** The joined bid, when one arrived within the impression window. */
  bid_event_id: string | null
  bid_time: number | null
  bid_price_micros: number | null
  /** Data-quality flag rules the event failed (comma separated), from its adgate.quality_flags header. */
  quality_flags: string | null
}

export interface ClickRow {
  click_id: string
  event_id: string
  impression_id: string
  campaign_id: string
  click_time: number
  /** The joined impression's time; null when none joined (is_no_impression). */
  impression_time: number | null
  is_bot: boolean
  is_duplicate: boolean
  is_no_impression: boolean
  is_too_soon: boolean
  valid: boolean
  quality_flags: string | null
}

export interface ConversionRow {
  conversion_id: string
  event_id: string
  click_id: string
  campaign_id: string
  conversion_time: number
  conversion_type: string
  value_micros: number
  /** The joined click's time; null when none joined within the window. */
  click_time: number | null
  attributed: boolean
  quality_flags: string | null
}

/** An event older than its partition's watermark: kept aside with its raw bytes, never counted. */
export interface LateRow {
  topic: string
  partition: number
  offset: string
  event_type: string
  event_id: string
  event_time: number
  watermark: number
  campaign_id: string | null
  value: Buffer
}

/**
 * A record of an event topic taken in live (not re-read after a restart), for the raw tables:
 * storage decodes it in full; the joins read only a few fields.
 */
export interface RawEvent {
  type: 'bid' | 'impression' | 'click' | 'conversion'
  partition: number
  offset: string
  /** Event time, epoch ms (the Parquet export's hour). */
  time: number
  /** Confluent wire format. */
  value: Buffer
  /** The adgate.quality_flags header. */
  flags: string | null
}

/** A bucket the anomaly detector (correlator/anomaly.ts) flagged, keyed by (metric, subject, bucket). */
export interface AnomalyRow {
  /** volume.<type>, ctr, cvr, win_rate, click_delay, staleness or cluster. */
  metric: string
  /** campaign:<id> or source:<name>. */
  subject: string
  /** Bucket start (ingest time, epoch ms). */
  bucket: number
  window_ms: number
  expected_low: number
  expected_high: number
  observed: number
  /** Why, for people (cluster: the source's features and the fleet's medians). */
  detail: string | null
}

/** Counter columns of the aggregate tables, in storage column order. */
export const AGG_FIELDS = [
  'bids',
  'wins',
  'impressions',
  'spend_micros',
  'clicks',
  'clicks_valid',
  'clicks_invalid',
  'conversions',
  'conversion_value_micros',
  // Data quality: events taken in (bids with a campaign, impressions, clicks, conversions) and
  // those among them that carried quality flags; the campaign's score is 1 - flagged / events.
  'quality_events',
  'quality_flagged',
] as const
export type AggField = (typeof AGG_FIELDS)[number]
export const F_BIDS = 0
export const F_WINS = 1
export const F_IMPRESSIONS = 2
export const F_SPEND = 3
export const F_CLICKS = 4
export const F_CLICKS_VALID = 5
export const F_CLICKS_INVALID = 6
export const F_CONVERSIONS = 7
export const F_CONVERSION_VALUE = 8
export const F_QUALITY_EVENTS = 9
export const F_QUALITY_FLAGGED = 10

/** Which operator counted: aggregate rows are owned per (stage, partition) so owners never race. */
export type Stage = 1 | 2 | 3

export interface AggDelta {
  stage: Stage
  partition: number
  campaign_id: string
  /** Bucket start, epoch ms. */
  bucket: number
  values: number[]
}
