// Generated funnels as the records the gateway would have written: Confluent wire values, keyed
// and partitioned like the gateway (murmur2 of the key field), offsets in stream order.

import type { SourceRecord } from '../../correlator/source.js'
import { EVENT_INFO, EVENT_TYPES, eventKey } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeWire } from '../../events/wire.js'
import type { Event } from '../../generator/events.js'
import { type FunnelOptions, generateFunnel } from '../../generator/funnel.js'
import { partitionFor } from '../../kafka/protocol/murmur2.js'

export const PARTITIONS = 4

/** Per topic-partition logs (key `topic:partition`), records in offset order. */
export type Logs = Map<string, SourceRecord[]>

export function funnelEvents(options: FunnelOptions): { type: (typeof EVENT_TYPES)[number]; event: Event }[] {
  const f = generateFunnel({ ...options, invalid: 0 })
  const out: { type: (typeof EVENT_TYPES)[number]; event: Event }[] = []
  for (const type of EVENT_TYPES) for (const event of f[type]) out.push({ type, event })
  return out
}

export function toLogs(
  events: { type: (typeof EVENT_TYPES)[number]; event: Event }[],
  partitions = PARTITIONS,
): Logs {
  const logs: Logs = new Map()
  for (const { type, event } of events) {
    const info = EVENT_INFO[type]
    const key = Buffer.from(eventKey(type, event))
    const partition = partitionFor(key, partitions)
    const k = `${info.topic}:${partition}`
    let log = logs.get(k)
    if (log === undefined) {
      log = []
      logs.set(k, log)
    }
    log.push({
      topic: info.topic,
      partition,
      offset: String(log.length),
      key,
      value: encodeWire(EVENT_SCHEMAS[type], event),
    })
  }
  return logs
}

export function allRecords(logs: Logs): SourceRecord[] {
  return [...logs.values()].flat()
}
