/**
 * The four event types adgate ingests, and their fixed names on the wire (topics, routes).
 * Everything that needs "which types exist" derives it from here.
 */
export const EVENT_TYPES = ['bid', 'impression', 'click', 'conversion'] as const
export type EventType = (typeof EVENT_TYPES)[number]

export interface EventTypeInfo {
  readonly type: EventType
  /** Kafka topic the events are written to. */
  readonly topic: string
  /** HTTP route segment: POST /v1/<route>. */
  readonly route: string
  /** Field that identifies the event for dedup. */
  readonly idField: 'event_id'
  /**
   * Field whose value keys the Kafka record, so the events a join needs meet on one partition
   * (a dotted path for bids: the auction id is the OpenRTB request's own id). Read it with eventKey.
   */
  readonly keyField: string
}

// Keys: an impression's click and the click's conversion must meet the impression and the click
// they join to. Keying by the join key of the *parent* puts each child on its parent's partition
// only if every stage is keyed by the same root id, which clicks and conversions don't carry.
// So each topic is keyed by the id its downstream join looks up: bids by auction id, impressions
// by auction id (joins bids), clicks by impression id, conversions by click id. The correlator
// re-keys where a chain crosses partitions (see correlator/).
export const EVENT_INFO: Readonly<Record<EventType, EventTypeInfo>> = Object.freeze({
  bid: { type: 'bid', topic: 'adgate.bids', route: 'bids', idField: 'event_id', keyField: 'request.id' },
  impression: {
    type: 'impression',
    topic: 'adgate.impressions',
    route: 'impressions',
    idField: 'event_id',
    keyField: 'auction_id',
  },
  click: {
    type: 'click',
    topic: 'adgate.clicks',
    route: 'clicks',
    idField: 'event_id',
    keyField: 'impression_id',
  },
  conversion: {
    type: 'conversion',
    topic: 'adgate.conversions',
    route: 'conversions',
    idField: 'event_id',
    keyField: 'click_id',
  },
})

export const DLQ_TOPIC = 'adgate.dlq'

/** The Kafka key of a canonical event of `type` (see keyField). */
export function eventKey(type: EventType, event: object): string {
  const e = event as Record<string, unknown>
  return type === 'bid' ? (e.request as { id: string }).id : (e[EVENT_INFO[type].keyField] as string)
}

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value)
}
