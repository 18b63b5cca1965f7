// Declaration mirrored in correlator/rows.ts: an event's fields as read, a row's as written (the same names by design).
/** The fields the joins read, as decoded from the Avro values (schemas/*.avsc). */
export interface BidEvent {
  event_id: string
  event_time: number
  id: string
  campaign_id: string | null
  bid_price_micros: number
  /** From the record's adgate.quality_flags header (set by the pipeline, not in the Avro value). */
  quality_flags?: string | null
}

export interface ImpressionEvent {
  event_id: string
  event_time: number
  impression_id: string
  auction_id: string
  campaign_id: string
  creative_id: string | null
  publisher_id: string | null
  site_domain: string | null
  device_type: string | null
  country: string | null
  cost_micros: number
  /** From the record's adgate.quality_flags header (set by the pipeline, not in the Avro value). */
  quality_flags?: string | null
}

export interface ClickEvent {
  event_id: string
  event_time: number
  click_id: string
  impression_id: string
  campaign_id: string
  user_agent: string | null
  /** From the record's adgate.quality_flags header (set by the pipeline, not in the Avro value). */
  quality_flags?: string | null
}

export interface ConversionEvent {
  event_id: string
  event_time: number
  conversion_id: string
  click_id: string
  campaign_id: string
  conversion_type: string
  value_micros: number
  /** From the record's adgate.quality_flags header (set by the pipeline, not in the Avro value). */
  quality_flags?: string | null
}

/** Where a record came from; late rows keep it, replay decisions use it. */
export interface RecordRef {
  topic: string
  partition: number
  offset: string
  value: Buffer
}

/** An impression as forwarded to the click join (re-keyed by impression id). */
export interface ForwardedImpression {
  impression_id: string
  time: number
  campaign_id: string
}

/** A click as forwarded to the conversion join (re-keyed by click id). */
export interface ForwardedClick {
  click_id: string
  time: number
}

/**
 * Event-time progress of an upstream partition, sent in-band after its forwarded records: every
 * record it forwards later has time ≥ watermark. `idle` when the upstream input has been quiet.
 */
export interface ProgressMarker {
  from: number
  watermark: number
  idle: boolean
}
