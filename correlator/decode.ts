import avro from 'avsc'
import { memoized } from '../decoders/memo.js'
import type { EventType } from '../events/catalog.js'
import { schemaById } from '../events/schemas.js'
import { WIRE_HEADER_BYTES } from '../events/wire.js'

/**
 * Wire-format values → only the fields the joins read. Avro data is the fields in schema order,
 * so decoding stops after the last field read: the writer schema is cut there (at every level:
 * the OpenRTB request is cut after its `id`, its imp, site, device and user objects are never
 * walked), and a reader schema of the fields read lets avsc skip the unread ones in between
 * instead of building them. One resolver per writer schema id, compiled once.
 */
// source and ingest_time: for the anomaly detector (correlator/anomaly.ts).
const NEEDED: Readonly<Record<EventType, readonly string[]>> = {
  // The auction id: `id` up to v1, the OpenRTB request's own id (request.id, see NESTED) from v2 on.
  bid: [
    'event_id',
    'event_time',
    'ingest_time',
    'source',
    'id',
    'request',
    'campaign_id',
    'bid_price_micros',
  ],
  impression: [
    'event_id',
    'event_time',
    'ingest_time',
    'source',
    'impression_id',
    'auction_id',
    'campaign_id',
    'creative_id',
    'publisher_id',
    'site_domain',
    'device_type',
    'country',
    'cost_micros',
  ],
  click: [
    'event_id',
    'event_time',
    'ingest_time',
    'source',
    'click_id',
    'impression_id',
    'campaign_id',
    'user_agent',
  ],
  conversion: [
    'event_id',
    'event_time',
    'ingest_time',
    'source',
    'conversion_id',
    'click_id',
    'campaign_id',
    'conversion_type',
    'value_micros',
  ],
}

/** Fields read inside a nested record field, by the field's name. */
const NESTED: Readonly<Record<string, readonly string[]>> = { request: ['id'] }

interface Reader {
  type: avro.Type
  resolver: ReturnType<avro.Type['createResolver']>
}

const readers = new Map<EventType, Map<number, Reader>>()

interface FieldJson {
  name: string
  type: unknown
  default?: unknown
}

interface RecordJson {
  fields: FieldJson[]
}

/** `schema` up to its last field in `needed`; nested records (NESTED) cut the same way. */
function cut(schema: RecordJson, needed: readonly string[]): RecordJson {
  const last = schema.fields.findLastIndex((f) => needed.includes(f.name))
  const fields = schema.fields.slice(0, last + 1).map((f) => {
    const inner = NESTED[f.name]
    return inner === undefined ? f : { ...f, type: cut(f.type as RecordJson, inner) }
  })
  return { ...schema, fields }
}

/** Only the `needed` fields of a cut writer schema, without defaults (so it always resolves). */
function only(schema: RecordJson, needed: readonly string[]): RecordJson {
  const fields = schema.fields
    .filter((f) => needed.includes(f.name))
    .map(({ default: _, ...f }) => {
      const inner = NESTED[f.name]
      return inner === undefined ? f : { ...f, type: only(f.type as RecordJson, inner) }
    })
  return { ...schema, fields }
}

function compile(type: EventType, id: number): Reader {
  const writer = schemaById(id)
  if (!writer) throw new Error(`unknown schema id ${id}`)
  const prefix = cut(writer.json as unknown as RecordJson, NEEDED[type])
  const reader = avro.Type.forSchema(only(prefix, NEEDED[type]) as avro.Schema)
  return { type: reader, resolver: reader.createResolver(avro.Type.forSchema(prefix as avro.Schema)) }
}

/** Decodes the join fields of a wire-format value of `type`; throws on a bad header or id. */
export function decodeForJoin(type: EventType, buf: Buffer): Record<string, unknown> {
  if (buf.length < WIRE_HEADER_BYTES || buf[0] !== 0) throw new Error('not a Confluent wire-format record')
  const id = buf.readInt32BE(1)
  const r = memoized(readers, type, id, compile)
  // noCheck: the bytes after the cut writer schema's last field are not read.
  const out = r.type.fromBuffer(buf.subarray(WIRE_HEADER_BYTES), r.resolver, true) as Record<string, unknown>
  if (out.request !== undefined) out.id = (out.request as { id: string }).id
  return out
}
