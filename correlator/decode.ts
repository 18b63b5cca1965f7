import avro from 'avsc'
import { EVENT_TYPES, type EventType } from '../events/catalog.js'
import { EVENT_SCHEMAS, schemaById } from '../events/schemas.js'
import { WIRE_HEADER_BYTES } from '../events/wire.js'

/**
 * Wire-format values → only the fields the joins read. Avro schema resolution with a reader
 * schema of those fields lets avsc skip the rest (a bid request's imp, site, device and user
 * objects) instead of building them: decoding a bid is several times cheaper. One resolver per
 * writer schema id, compiled once.
 */
// source and ingest_time: for the anomaly detector (correlator/anomaly.ts).
const NEEDED: Readonly<Record<EventType, readonly string[]>> = {
  bid: ['event_id', 'event_time', 'ingest_time', 'source', 'id', 'campaign_id', 'bid_price_micros'],
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

function readerType(type: EventType): avro.Type {
  const schema = EVENT_SCHEMAS[type].json as unknown as {
    name: string
    namespace?: string
    fields: { name: string }[]
  }
  return avro.Type.forSchema({
    ...schema,
    fields: schema.fields.filter((f) => NEEDED[type].includes(f.name)),
  } as avro.Schema)
}

const READER_TYPES = new Map<EventType, avro.Type>(EVENT_TYPES.map((t) => [t, readerType(t)]))

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
    const type_ = READER_TYPES.get(type)!
    r = { type: type_, resolver: type_.createResolver(writer.type) }
    byId.set(id, r)
  }
  return r.type.fromBuffer(buf.subarray(WIRE_HEADER_BYTES), r.resolver, true) as Record<string, unknown>
}
