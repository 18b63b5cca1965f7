// What the anomaly detector (anomaly.ts) measures, and its settings.

export const ANOMALY_METRICS = [
  'volume.bid',
  'volume.impression',
  'volume.click',
  'volume.conversion',
  'ctr',
  'cvr',
  'win_rate',
  'click_delay',
  'staleness',
  'cluster',
] as const

export interface AnomalyOptions {
  bucketMs: number
  /** Buckets of history before a series may be flagged. */
  warmup: number
  /** Band half-width in robust standard deviations. */
  k: number
  /** A bucket closes when events this much newer (ingest time) have arrived. */
  closeAfterMs: number
  relearnAfter: number
  clusterEvery: number
  /** Least denominator (events) for a ratio, and least samples for a median, to judge a bucket. */
  minCount: number
  /** Least absolute change in a volume to flag (a few events are never an incident). */
  minVolumeChange: number
  /** Ratios: binomial tail probability beyond which a count is outside the band. */
  ratioTail: number
}

export const DEFAULT_ANOMALY_OPTIONS: AnomalyOptions = {
  bucketMs: 60_000,
  warmup: 10,
  k: 6,
  closeAfterMs: 120_000,
  relearnAfter: 30,
  clusterEvery: 10,
  minCount: 30,
  minVolumeChange: 30,
  // ≈ the normal tail beyond 5σ: a few thousand ratio tests per day of buckets give ~0.001 false flags.
  ratioTail: 3e-7,
}
