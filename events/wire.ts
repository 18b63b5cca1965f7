import type { SchemaVersion } from './schemas.js'
import { schemaById } from './schemas.js'

/**
 * Confluent wire format, so Kafka Connect, ksqlDB, Flink and kcat can read adgate's topics:
 *
 *   byte 0      magic, always 0
 *   bytes 1..4  schema id, big-endian int32
 *   bytes 5..   Avro binary of the value under that schema
 */
export const WIRE_HEADER_BYTES = 5

export function writeWireHeader(target: Buffer, offset: number, schemaId: number): void {
  target[offset] = 0
  target.writeInt32BE(schemaId, offset + 1)
}

/** Encode one value as a standalone wire-format record. Hot paths batch through encodeMany instead. */
export function encodeWire(schema: SchemaVersion, value: unknown): Buffer {
  const body = schema.type.toBuffer(value)
  const out = Buffer.allocUnsafe(WIRE_HEADER_BYTES + body.length)
  writeWireHeader(out, 0, schema.id)
  body.copy(out, WIRE_HEADER_BYTES)
  return out
}

export interface WireDecoded {
  schema: SchemaVersion
  value: unknown
}

/** Decode a wire-format record; throws on a bad header or unknown id (readers own their records). */
export function decodeWire(buf: Buffer): WireDecoded {
  if (buf.length < WIRE_HEADER_BYTES || buf[0] !== 0) throw new Error('not a Confluent wire-format record')
  const id = buf.readInt32BE(1)
  const schema = schemaById(id)
  if (!schema) throw new Error(`unknown schema id ${id}`)
  return { schema, value: schema.type.fromBuffer(buf.subarray(WIRE_HEADER_BYTES)) }
}

/**
 * Frame a record that is already Avro binary under `schema` (an Avro body written with adgate's
 * own schema), replacing only the gateway-owned fields. Every event schema begins
 *
 *   event_id string | event_time long | ingest_time long | source string | …
 *
 * so the bytes before ingest_time and after source are copied as they are: far cheaper than
 * decoding to objects and encoding again. Avro longs are zig-zag varints, strings a length then UTF-8.
 */
export function frameWithStamps(
  schema: SchemaVersion,
  record: Buffer,
  ingestTime: number,
  source: string,
): Buffer {
  const out = Buffer.allocUnsafe(framedBytes(record, source))
  return out.subarray(0, writeWithStamps(out, 0, schema, record, ingestTime, source))
}

/** The most bytes frameWithStamps writes for `record` from `source`. */
export function framedBytes(record: Buffer, source: string): number {
  return WIRE_HEADER_BYTES + record.length + 20 + Buffer.byteLength(source)
}

/** frameWithStamps into `out` at `at` (with framedBytes free there); returns the end. */
export function writeWithStamps(
  out: Buffer,
  at: number,
  schema: SchemaVersion,
  record: Buffer,
  ingestTime: number,
  source: string,
): number {
  let pos = skipVarint(record, skipString(record, 0)) // event_id, event_time
  const stampsAt = pos
  pos = skipString(record, skipVarint(record, pos)) // ingest_time, source
  writeWireHeader(out, at, schema.id)
  at += WIRE_HEADER_BYTES
  at += record.copy(out, at, 0, stampsAt)
  at = writeLong(out, at, ingestTime)
  at = writeLong(out, at, Buffer.byteLength(source))
  at += out.write(source, at)
  return at + record.copy(out, at, pos)
}

function readVarint(buf: Buffer, pos: number): { value: number; end: number } {
  let n = 0
  let scale = 1
  for (let i = pos; ; i++) {
    const b = buf[i]
    if (b === undefined || i - pos > 9) throw new RangeError('truncated Avro record')
    n += (b & 0x7f) * scale
    if (b < 0x80) return { value: n % 2 === 0 ? n / 2 : -(n + 1) / 2, end: i + 1 }
    scale *= 128
  }
}

function skipVarint(buf: Buffer, pos: number): number {
  return readVarint(buf, pos).end
}

function skipString(buf: Buffer, pos: number): number {
  const { value, end } = readVarint(buf, pos)
  return end + value
}

function writeLong(buf: Buffer, pos: number, value: number): number {
  // Zig-zag without 32-bit operators: timestamps need more than 31 bits.
  let z = value >= 0 ? value * 2 : -value * 2 - 1
  while (z >= 0x80) {
    buf[pos++] = (z % 128) | 0x80
    z = Math.floor(z / 128)
  }
  buf[pos++] = z
  return pos
}
