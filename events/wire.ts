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
