import { writeContainer } from '../decoders/avro-container.js'
import type { Encoding } from '../decoders/result.js'
import type { EventType } from '../events/catalog.js'
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

interface FieldSchema {
  name: string
  type: unknown
  'adgate.json'?: boolean
}

function fieldsOf(type: EventType): FieldSchema[] {
  return (EVENT_SCHEMAS[type].json as unknown as { fields: FieldSchema[] }).fields
}

/** JSON view: JSON-text fields (OpenRTB ext) written as the objects they hold. */
function toJson(type: EventType, event: Event): Event {
  const out: Event = {}
  for (const f of fieldsOf(type)) {
    if (GATEWAY_FIELDS.has(f.name)) continue
    out[f.name] = expandJsonText(f.type, event[f.name], f['adgate.json'] === true)
  }
  return out
}

function expandJsonText(schema: unknown, value: unknown, isJsonText: boolean): unknown {
  if (value === null || value === undefined) return value
  if (isJsonText && typeof value === 'string') return JSON.parse(value)
  const node = Array.isArray(schema) ? schema.find((s) => s !== 'null') : schema
  if (typeof node !== 'object' || node === null) return value
  const n = node as { type: unknown; fields?: FieldSchema[]; items?: unknown }
  if (n.type === 'record' && n.fields) {
    const out: Event = {}
    for (const f of n.fields)
      out[f.name] = expandJsonText(f.type, (value as Event)[f.name], f['adgate.json'] === true)
    return out
  }
  if (n.type === 'array' && Array.isArray(value)) return value.map((v) => expandJsonText(n.items, v, false))
  if (typeof n.type === 'object') return expandJsonText(n.type, value, isJsonText)
  return value
}

function toCsv(type: EventType, events: readonly Event[]): string {
  const fields = fieldsOf(type).filter((f) => !GATEWAY_FIELDS.has(f.name))
  const lines = [fields.map((f) => f.name).join(',')]
  for (const e of events) lines.push(fields.map((f) => csvCell(e[f.name])).join(','))
  return `${lines.join('\n')}\n`
}

/** RFC 4180 cell: null is an empty cell; "" keeps the empty string; nested values as JSON text. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return ''
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value)
  if (text === '' || /[",\r\n]/.test(text)) return `"${text.replace(/"/g, '""')}"`
  return text
}
