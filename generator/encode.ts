import { writeContainer } from '../decoders/avro-container.js'
import type { Encoding } from '../decoders/result.js'
import type { EventType } from '../events/catalog.js'
import { eventToJson } from '../events/event-json.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import type { Event } from './events.js'

/**
 * Canonical events → request bodies in each encoding, the way ad servers write them.
 * The gateway-owned fields (ingest_time, source) are left out of the text encodings.
 */
const GATEWAY_FIELDS = new Set(['ingest_time', 'source'])

export const CONTENT_TYPE: Readonly<Record<Encoding, string>> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  csv: 'text/csv',
  avro: 'application/avro',
}

export function encodeEvents(type: EventType, events: readonly Event[], encoding: Encoding): Buffer {
  switch (encoding) {
    case 'json':
      return Buffer.from(JSON.stringify(events.map((e) => toJson(type, e))))
    case 'ndjson':
      return Buffer.from(events.map((e) => `${JSON.stringify(toJson(type, e))}\n`).join(''))
    case 'csv':
      return Buffer.from(toCsv(type, events))
    case 'avro':
      return writeContainer(EVENT_SCHEMAS[type].type, events)
  }
}

/** JSON view (events/event-json.ts) without the gateway-owned fields. */
function toJson(type: EventType, event: Event): Event {
  const out = eventToJson(EVENT_SCHEMAS[type].model, event)
  for (const f of GATEWAY_FIELDS) delete out[f]
  return out
}

/** One column per top-level field; nested values as the JSON text of their JSON view. */
function toCsv(type: EventType, events: readonly Event[]): string {
  const fields = EVENT_SCHEMAS[type].model.fields
    .filter((f) => !GATEWAY_FIELDS.has(f.name) && f.role !== 'rest' && f.role !== 'micros')
    .map((f) => f.name)
  const lines = [fields.join(',')]
  for (const e of events) {
    const view = toJson(type, e)
    lines.push(fields.map((f) => csvCell(view[f])).join(','))
  }
  return `${lines.join('\n')}\n`
}

/** RFC 4180 cell: null is an empty cell; "" keeps the empty string; nested values as JSON text. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return ''
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value)
  if (text === '' || /[",\r\n]/.test(text)) return `"${text.replace(/"/g, '""')}"`
  return text
}
