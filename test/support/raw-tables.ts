// The raw tables' keys: what every record of the logs should leave (one row each), and what a
// SQL sink holds. Compared as sorted `partition:offset:event_id` lists per table.
import { EVENT_INFO, EVENT_TYPES } from '../../events/catalog.js'
import { decodeWire } from '../../events/wire.js'
import type { Logs } from './funnel-records.js'

export type RawKeys = Record<string, string[]>

export function expectedRawKeys(logs: Logs): RawKeys {
  const out: RawKeys = {}
  for (const type of EVENT_TYPES) {
    const keys: string[] = []
    for (const log of logs.values())
      for (const r of log)
        if (r.topic === EVENT_INFO[type].topic)
          keys.push(
            `${r.partition}:${r.offset}:${(decodeWire(r.value).value as { event_id: string }).event_id}`,
          )
    out[`raw_${type}s`] = keys.sort()
  }
  return out
}

export async function storedRawKeys(
  query: (sql: string) => Promise<Record<string, unknown>[]>,
): Promise<RawKeys> {
  const out: RawKeys = {}
  for (const type of EVENT_TYPES) {
    const rows = await query(`SELECT kafka_partition, kafka_offset, event_id FROM raw_${type}s`)
    out[`raw_${type}s`] = rows.map((r) => `${r.kafka_partition}:${r.kafka_offset}:${r.event_id}`).sort()
  }
  return out
}
