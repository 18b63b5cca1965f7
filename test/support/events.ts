import type { DecodeOptions } from '../../decoders/result.js'
import type { EventType } from '../../events/catalog.js'

export const INGEST_TIME = 1_795_000_000_000
export const SOURCE = 'test-source'

export function options(type: EventType, maxEvents = 100_000): DecodeOptions {
  return { type, maxEvents, ingestTime: INGEST_TIME, source: SOURCE }
}

/** What a decoded event must equal: the generated one with the gateway's stamps. */
export function stamped(event: Record<string, unknown>): Record<string, unknown> {
  return { ...event, ingest_time: INGEST_TIME, source: SOURCE }
}
