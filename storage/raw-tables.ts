import type { RawEvent } from '../correlator/rows.js'
import { isV1BidSchema, upcastBidV1 } from '../decoders/bid-upcast.js'
import type { EventType } from '../events/catalog.js'
import { eventToJson } from '../events/event-json.js'
import type { RecordNode, SchemaNode } from '../events/schema-model.js'
import { EVENT_SCHEMAS, schemaById } from '../events/schemas.js'
import { WIRE_HEADER_BYTES } from '../events/wire.js'

/**
 * The raw tables: every event the correlator takes in, one row per Kafka record, as the gateway
 * accepted it (late and duplicate events included: a retried request is two rows with one
 * event_id). Columns:
 *   kafka_partition, kafka_offset   where the record is (a row is written once: in the same
 *                                   transaction as the correlator's positions, as its counters)
 *   the event schema's scalar top-level fields, by their own names (the envelope: event_id,
 *                                   event_time, ingest_time, source; then the event's fields
 *                                   and its `_unknown`)
 *   bids only: the OpenRTB fields analysts query (auction id, site/app, device, regs/consent…)
 *   quality_flags                   the data-quality rules the event failed
 *   event                           the whole event as JSON text, as its sender posted it
 *                                   (events/event-json.ts: ext and _unknown put back in place)
 * raw_bid_imps has one row per imp of a bid request: its floor as an exact DECIMAL (the
 * decimal the sender wrote) beside the integer micros adgate derived.
 *
 * The columns follow the newest schema of each type (older and other writers' records fill the
 * columns their schema has, by name).
 */
export type SqlType = 'TEXT' | 'BIGINT' | 'INTEGER' | 'DOUBLE' | 'BOOLEAN' | 'DECIMAL'

type Value = Record<string, unknown>

export interface RawColumn {
  readonly name: string
  readonly type: SqlType
  readonly get: (v: Value) => unknown
}

export interface RawTable {
  readonly name: string
  readonly type: EventType
  readonly columns: readonly RawColumn[]
  /** Time column of the Parquet export's hive layout. */
  readonly timeColumn: string
  /** What the column getters read, one per row: an event gives one row, a bid one per imp. */
  readonly rowsOf: (e: Source) => Value[]
}

/** A decoded record as the getters see it. */
interface Source extends Value {
  partition: number
  offset: string
  flags: string | null
  value: Value
  json: string
}

const col = (name: string, type: SqlType, get: (v: Value) => unknown): RawColumn => ({ name, type, get })

/** A scalar field of the schema as its column; null for fields that are not scalar. */
function scalarColumn(name: string, node: SchemaNode): RawColumn | null {
  const inner = node.kind === 'optional' ? node.inner : node
  const type: SqlType | null =
    inner.kind === 'string' || inner.kind === 'enum'
      ? 'TEXT'
      : inner.kind === 'long'
        ? 'BIGINT'
        : inner.kind === 'int'
          ? 'INTEGER'
          : inner.kind === 'double' || inner.kind === 'float'
            ? 'DOUBLE'
            : inner.kind === 'boolean'
              ? 'BOOLEAN'
              : null
  // A record of an older writer that lacks the field (bid v2 has no envelope _unknown) gives null.
  return type === null ? null : col(name, type, (v) => v[name] ?? null)
}

function schemaColumns(model: RecordNode): RawColumn[] {
  return model.fields.flatMap((f) => scalarColumn(f.name, f.node) ?? [])
}

/** Reads `path` in nested records; null when any step is absent. */
function at(v: unknown, ...path: string[]): unknown {
  for (const k of path) {
    if (v === null || v === undefined) return null
    v = (v as Value)[k]
  }
  return v ?? null
}

/** A JSON-text field (ext): text as stored, or (an upcast v1 bid) the object as text. */
function jsonText(v: unknown): string | null {
  if (v === null || v === undefined) return null
  return typeof v === 'string' ? v : JSON.stringify(v)
}

const list = (v: unknown): string | null => (Array.isArray(v) ? v.join(',') : null)

/**
 * The decimal the sender wrote: a double's shortest text is the decimal it was parsed from
 * (0.03, not 0.0299999…). Exponent forms (below 1e-6) are written out for SQL.
 */
export function decimalText(x: number): string {
  const s = String(x)
  return s.includes('e') ? x.toFixed(20).replace(/0+$/, '') : s
}

const inventory = (v: Value) =>
  at(v, 'request', 'site') ?? at(v, 'request', 'app') ?? at(v, 'request', 'dooh')

/** The OpenRTB fields analysts filter and group by, after the envelope. */
const BID_COLUMNS: readonly RawColumn[] = [
  col('auction_id', 'TEXT', (v) => at(v, 'request', 'id')),
  col('imps', 'INTEGER', (v) => (at(v, 'request', 'imp') as unknown[] | null)?.length ?? 0),
  col('cur', 'TEXT', (v) => list(at(v, 'request', 'cur'))),
  col('site_domain', 'TEXT', (v) => at(v, 'request', 'site', 'domain')),
  col('site_page', 'TEXT', (v) => at(v, 'request', 'site', 'page')),
  col('app_bundle', 'TEXT', (v) => at(v, 'request', 'app', 'bundle')),
  col('app_domain', 'TEXT', (v) => at(v, 'request', 'app', 'domain')),
  col('publisher_id', 'TEXT', (v) => at(inventory(v), 'publisher', 'id')),
  col('device_type', 'INTEGER', (v) => at(v, 'request', 'device', 'devicetype')),
  col('os', 'TEXT', (v) => at(v, 'request', 'device', 'os')),
  col('country', 'TEXT', (v) => at(v, 'request', 'device', 'geo', 'country')),
  col('ifa', 'TEXT', (v) => at(v, 'request', 'device', 'ifa')),
  col('dnt', 'INTEGER', (v) => at(v, 'request', 'device', 'dnt')),
  col('gdpr', 'INTEGER', (v) => at(v, 'request', 'regs', 'gdpr')),
  col('coppa', 'INTEGER', (v) => at(v, 'request', 'regs', 'coppa')),
  col('us_privacy', 'TEXT', (v) => at(v, 'request', 'regs', 'us_privacy')),
  col('gpp', 'TEXT', (v) => at(v, 'request', 'regs', 'gpp')),
  col('gpp_sid', 'TEXT', (v) => list(at(v, 'request', 'regs', 'gpp_sid'))),
  col('consent', 'TEXT', (v) => at(v, 'request', 'user', 'consent')),
  col('schain_complete', 'INTEGER', (v) => at(v, 'request', 'source', 'schain', 'complete')),
  col('test', 'INTEGER', (v) => at(v, 'request', 'test')),
  col('auction_type', 'INTEGER', (v) => at(v, 'request', 'at')),
  col('tmax', 'INTEGER', (v) => at(v, 'request', 'tmax')),
  col('ext', 'TEXT', (v) => jsonText(at(v, 'request', 'ext'))),
  col('request_unknown', 'TEXT', (v) => at(v, 'request', '_unknown')),
]

/** raw_bid_imps: one row per imp; `v` here is { imp, index, bid } (see bidImpValues). */
const IMP_COLUMNS: readonly RawColumn[] = [
  col('kafka_partition', 'INTEGER', (v) => v.partition),
  col('kafka_offset', 'BIGINT', (v) => v.offset),
  col('imp_index', 'INTEGER', (v) => v.index),
  col('event_id', 'TEXT', (v) => at(v, 'bid', 'event_id')),
  col('event_time', 'BIGINT', (v) => at(v, 'bid', 'event_time')),
  col('auction_id', 'TEXT', (v) => at(v, 'bid', 'request', 'id')),
  col('imp_id', 'TEXT', (v) => at(v, 'imp', 'id')),
  col('tagid', 'TEXT', (v) => at(v, 'imp', 'tagid')),
  col('bidfloor', 'DECIMAL', (v) => {
    const x = at(v, 'imp', 'bidfloor')
    return typeof x === 'number' ? decimalText(x) : null
  }),
  col('bidfloor_micros', 'BIGINT', (v) => {
    const m = at(v, 'imp', 'bidfloor_micros')
    const x = at(v, 'imp', 'bidfloor')
    // An upcast v1 bid has the decimal only (v1 kept micros, the decimal is derived from them).
    return m ?? (typeof x === 'number' ? Math.round(x * 1e6) : null)
  }),
  col('bidfloorcur', 'TEXT', (v) => at(v, 'imp', 'bidfloorcur')),
  col('media', 'TEXT', (v) => {
    const imp = v.imp as Value
    const kinds = ['banner', 'video', 'audio', 'native'].filter(
      (k) => imp[k] !== null && imp[k] !== undefined,
    )
    return kinds.length > 0 ? kinds.join(',') : null
  }),
  col(
    'w',
    'INTEGER',
    (v) => at(v, 'imp', 'banner', 'w') ?? firstFormat(v, 'w') ?? at(v, 'imp', 'video', 'w'),
  ),
  col(
    'h',
    'INTEGER',
    (v) => at(v, 'imp', 'banner', 'h') ?? firstFormat(v, 'h') ?? at(v, 'imp', 'video', 'h'),
  ),
  col('deals', 'TEXT', (v) => {
    const deals = at(v, 'imp', 'pmp', 'deals') as Value[] | null
    return deals === null ? null : deals.map((d) => d.id).join(',')
  }),
  col('private_auction', 'INTEGER', (v) => at(v, 'imp', 'pmp', 'private_auction')),
  col('instl', 'INTEGER', (v) => at(v, 'imp', 'instl')),
  col('secure', 'INTEGER', (v) => at(v, 'imp', 'secure')),
  col('ext', 'TEXT', (v) => jsonText(at(v, 'imp', 'ext'))),
  col('_unknown', 'TEXT', (v) => at(v, 'imp', '_unknown')),
]

function firstFormat(v: Value, side: 'w' | 'h'): unknown {
  const formats = at(v, 'imp', 'banner', 'format') as Value[] | null
  return formats?.[0]?.[side] ?? null
}

const KEY_COLUMNS: readonly RawColumn[] = [
  col('kafka_partition', 'INTEGER', (v) => v.partition),
  col('kafka_offset', 'BIGINT', (v) => v.offset),
]

/** The envelope's own columns, then (bids) the OpenRTB ones, flags and the whole event. */
function eventTable(type: EventType, extra: readonly RawColumn[]): RawTable {
  const own = schemaColumns(EVENT_SCHEMAS[type].model)
  return {
    name: `raw_${type}s`,
    type,
    columns: [
      ...KEY_COLUMNS,
      ...own.map((c) => col(c.name, c.type, (v) => c.get(v.value as Value))),
      ...extra.map((c) => col(c.name, c.type, (v) => c.get(v.value as Value))),
      col('quality_flags', 'TEXT', (v) => v.flags),
      col('event', 'TEXT', (v) => v.json),
    ],
    timeColumn: 'event_time',
    rowsOf: (e) => [e],
  }
}

export const RAW_TABLES: readonly RawTable[] = [
  eventTable('bid', BID_COLUMNS),
  {
    name: 'raw_bid_imps',
    type: 'bid',
    columns: IMP_COLUMNS,
    timeColumn: 'event_time',
    rowsOf: (e) =>
      ((at(e.value, 'request', 'imp') ?? []) as Value[]).map((imp, index) => ({
        ...e,
        imp,
        index,
        bid: e.value,
      })),
  },
  eventTable('impression', []),
  eventTable('click', []),
  eventTable('conversion', []),
]

/** Rows of each raw table for a batch's events, column values in RawTable order. */
export function rawRows(events: readonly RawEvent[]): Map<RawTable, unknown[][]> {
  const out = new Map<RawTable, unknown[][]>(RAW_TABLES.map((t) => [t, []]))
  for (const ref of events) {
    const e = decode(ref)
    if (e === null) continue
    for (const table of RAW_TABLES) {
      if (table.type !== ref.type) continue
      const rows = out.get(table)!
      for (const v of table.rowsOf(e)) rows.push(table.columns.map((c) => c.get(v)))
    }
  }
  return out
}

interface Reader {
  read(body: Buffer): Value
  /** The value as its sender posted it (JSON). */
  json(value: Value): unknown
}

const readers = new Map<number, Reader>()

/**
 * How records under writer schema `id` are read: with that schema itself, so a field only another
 * writer's schema has is kept in `event` too (columns are found by name); bid v1 is upcast, as the
 * gateway does, since its request's fields are not where v2 has them.
 */
function readerFor(type: EventType, id: number): Reader | null {
  let r = readers.get(id)
  if (r !== undefined) return r
  const writer = schemaById(id)
  if (writer === undefined) return null
  r =
    type === 'bid' && isV1BidSchema(writer.json)
      ? { read: (b) => upcastBidV1(writer.type.fromBuffer(b) as Value), json: (value) => value }
      : { read: (b) => writer.type.fromBuffer(b) as Value, json: (value) => eventToJson(writer.model, value) }
  readers.set(id, r)
  return r
}

/**
 * A record → its value and JSON text. Null only for bytes the correlator's own decoding (which
 * reads the same record up to its join fields) already counted as undecodable, or corrupt after
 * them (which Kafka's CRC rules out).
 */
function decode(ref: RawEvent): Source | null {
  const buf = ref.value
  if (buf.length < WIRE_HEADER_BYTES || buf[0] !== 0) return null
  try {
    const reader = readerFor(ref.type, buf.readInt32BE(1))
    if (reader === null) return null
    const value = reader.read(buf.subarray(WIRE_HEADER_BYTES))
    const json = JSON.stringify(reader.json(value))
    return { partition: ref.partition, offset: ref.offset, flags: ref.flags, value, json }
  } catch {
    return null
  }
}
