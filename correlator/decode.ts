import avro from 'avsc'
import type { EventType } from '../events/catalog.js'
import { type SchemaVersion, schemaById } from '../events/schemas.js'
import { WIRE_HEADER_BYTES } from '../events/wire.js'

/**
 * Wire-format values → only the fields the joins read. Avro schema resolution with a reader
 * schema of those fields lets avsc skip the rest (a bid request's imp, site, device and user
 * objects) instead of building them: decoding a bid is several times cheaper. One resolver per
 * writer schema id, compiled once.
 */
// source and ingest_time: for the anomaly detector (correlator/anomaly.ts).
const NEEDED: Readonly<Record<EventType, readonly string[]>> = {
  // The auction id: `id` up to v1, the OpenRTB request's own id (request.id) from v2 on.
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

interface Reader {
  type: avro.Type
  resolver: ReturnType<avro.Type['createResolver']>
}

const readers = new Map<string, Map<number, Reader>>()

interface RecordJson {
  fields: { name: string; type: unknown; default?: unknown }[]
}

/** The writer's own schema cut down to the fields the joins read (so it always resolves). */
function readerType(type: EventType, writer: SchemaVersion): avro.Type {
  const schema = writer.json as unknown as RecordJson
  const fields = schema.fields
    .filter((f) => NEEDED[type].includes(f.name))
    .map(({ default: _, ...f }) =>
      f.name === 'request'
        ? { ...f, type: { ...(f.type as RecordJson), fields: [{ name: 'id', type: 'string' }] } }
        : f,
    )
  return avro.Type.forSchema({ ...schema, fields } as avro.Schema)
}

/** Decodes the join fields of a wire-format value of `type`; throws on a bad header or id. */
export function decodeForJoin(type: EventType, buf: Buffer): Record<string, unknown> {
  if (buf.length < WIRE_HEADER_BYTES || buf[0] !== 0) throw new Error('not a Confluent wire-format record')
  const id = buf.readInt32BE(1)
  let byId = readers.get(type)
  if (byId === undefined) {
    byId = new Map()
    readers.set(type, byId)
  }
  let r = byId.get(id)
  if (r === undefined) {
    const writer = schemaById(id)
    if (!writer) throw new Error(`unknown schema id ${id}`)
    const reader = readerType(type, writer)
    r = { type: reader, resolver: reader.createResolver(writer.type) }
    byId.set(id, r)
  }
  const out = r.type.fromBuffer(buf.subarray(WIRE_HEADER_BYTES), r.resolver, true) as Record<string, unknown>
  if (out.request !== undefined) out.id = (out.request as { id: string }).id
  return out
}
