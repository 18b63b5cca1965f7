import { decodeLz4Frames, encodeLz4Frame } from '../../codecs/lz4-frame.js'
import { crc32c } from './crc32c.js'
import { varintSize, Writer } from './writer.js'

/**
 * Kafka RecordBatch v2 (magic 2), written by the decoder workers so the main thread only moves
 * bytes. One builder per worker thread, reused.
 *
 *   baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 = 2
 *   crc uint32 = CRC-32C of everything below | attributes int16 (bits 0-2: codec, 3 = LZ4)
 *   lastOffsetDelta int32 | firstTimestamp int64 | maxTimestamp int64
 *   producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32
 *   records (LZ4 frame when compressed), each:
 *     length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
 *     keyLength varint (-1 = null) | key | valueLength varint | value
 *     headerCount varint | (keyLength varint | key | valueLength varint | value)*
 */
export const LZ4 = 3
/** Bytes of a v2 batch before its records. */
export const RECORD_BATCH_HEADER_BYTES = 61
const HEADER_BYTES = RECORD_BATCH_HEADER_BYTES

export interface EncodedBatch {
  readonly topic: string
  readonly partition: number
  readonly records: number
  /** Offset and length of the batch in the builder's output. */
  readonly offset: number
  readonly length: number
}

/** Record header naming the data-quality flag rules an event failed (comma separated). */
export const QUALITY_FLAGS_HEADER = 'adgate.quality_flags'

/** Headers shared by many records, encoded once: count, then key/value pairs. */
export function encodeHeaders(headers: Readonly<Record<string, string>>): Buffer {
  const w = new Writer(256)
  const entries = Object.entries(headers)
  w.varint(entries.length)
  for (const [k, v] of entries) {
    const kb = Buffer.from(k)
    const vb = Buffer.from(v)
    w.varint(kb.length).bytes(kb).varint(vb.length).bytes(vb)
  }
  return Buffer.from(w.result())
}

class PartitionRecords {
  readonly w = new Writer(16 * 1024)
  count = 0
  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}
}

export class RecordBatchBuilder {
  // Kept across tasks (bounded by the number of partitions), so their buffers are reused. Looked
  // up by topic, then partition number: no key string is built and hashed per record.
  private readonly topics = new Map<string, PartitionRecords[]>()
  /** Every partition's records, in the order first used (the order of the batches). */
  private readonly partitions: PartitionRecords[] = []
  private readonly out = new Writer(1 << 20)

  /** Append one record (timestamps are per batch, so every record's delta is 0). */
  add(
    topic: string,
    partition: number,
    key: Uint8Array | null,
    value: Uint8Array,
    headers: Uint8Array,
  ): void {
    let byPartition = this.topics.get(topic)
    if (byPartition === undefined) {
      byPartition = []
      this.topics.set(topic, byPartition)
    }
    let p = byPartition[partition]
    if (p === undefined) {
      p = new PartitionRecords(topic, partition)
      byPartition[partition] = p
      this.partitions.push(p)
    }
    // The record's length prefix is computed, so the record is written once, in place.
    const keyLength = key === null ? -1 : key.length
    const length =
      2 + // attributes, timestampDelta 0
      varintSize(p.count) +
      varintSize(keyLength) +
      (key === null ? 0 : keyLength) +
      varintSize(value.length) +
      value.length +
      headers.length
    const w = p.w
    w.varint(length).int8(0).varint(0).varint(p.count).varint(keyLength)
    if (key !== null) w.bytes(key)
    w.varint(value.length).bytes(value).bytes(headers)
    p.count++
  }

  get pendingRecords(): number {
    let n = 0
    for (const p of this.partitions) n += p.count
    return n
  }

  /**
   * Close every partition's batch (LZ4-compressed) into one output buffer; the builder is then
   * empty. `rawBytes`: the records' bytes before compression (for the compression-ratio metric).
   */
  finish(timestamp: number): { buffer: Buffer; batches: EncodedBatch[]; rawBytes: number } {
    const out = this.out.reset()
    const batches: EncodedBatch[] = []
    let rawBytes = 0
    for (const p of this.partitions) {
      if (p.count === 0) continue
      const start = out.pos
      rawBytes += p.w.pos
      writeRecordBatch(out, p.w.result(), p.count, timestamp, timestamp)
      batches.push({
        topic: p.topic,
        partition: p.partition,
        records: p.count,
        offset: start,
        length: out.pos - start,
      })
      p.count = 0
      p.w.reset()
    }
    return { buffer: out.result(), batches, rawBytes }
  }
}

/**
 * Append one LZ4-compressed v2 batch of `count` records (their bytes as laid out above, offset
 * deltas from 0) to `out`, without producer id (kafka/idempotence.ts stamps it when it is sent).
 */
export function writeRecordBatch(
  out: Writer,
  records: Uint8Array,
  count: number,
  firstTimestamp: number,
  maxTimestamp: number,
): void {
  out.ensure(HEADER_BYTES)
  out.int64(0)
  const lengthAt = out.reserve32() // batchLength: bytes after this field, known once compressed
  out.int32(-1) // partitionLeaderEpoch: set by the broker
  out.int8(2)
  const crcAt = out.reserve32()
  out.int16(LZ4)
  out.int32(count - 1)
  out.int64(firstTimestamp)
  out.int64(maxTimestamp)
  out.int64(-1) // producerId: not idempotent
  out.int16(-1)
  out.int32(-1)
  out.int32(count)
  encodeLz4Frame(records, out) // straight into the output: no buffer per batch
  out.buf.writeInt32BE(out.pos - lengthAt - 4, lengthAt)
  out.buf.writeUInt32BE(crc32c(out.buf, crcAt + 4, out.pos), crcAt)
}

export interface DecodedRecord {
  readonly offsetDelta: number
  readonly key: Buffer | null
  readonly value: Buffer
  /** The value of the header asked for, when asked for and present. */
  readonly header: string | null
  /** Every header, when asked for (`allHeaders`). */
  readonly headers?: Record<string, string>
}

/**
 * Read back a batch this module wrote (the spool hands them to the embedded correlator);
 * `header`: the name of one header whose value to return with each record; `allHeaders`: every
 * header too (exports of the spool's quarantine).
 */
export function decodeRecordBatch(
  batch: Buffer,
  header?: string,
  allHeaders = false,
): { firstTimestamp: number; records: DecodedRecord[] } {
  const wanted = header === undefined ? null : Buffer.from(header)
  if (batch.length < HEADER_BYTES || batch[16] !== 2) throw new Error('not a v2 record batch')
  const attributes = batch.readInt16BE(21)
  const firstTimestamp = Number(batch.readBigInt64BE(27))
  const count = batch.readInt32BE(57)
  let body = batch.subarray(HEADER_BYTES)
  if ((attributes & 7) === LZ4) body = decodeLz4Frames(body, 1 << 30)
  else if ((attributes & 7) !== 0) throw new Error(`unsupported codec ${attributes & 7}`)
  const r = { buf: body, pos: 0 }
  const records: DecodedRecord[] = []
  for (let i = 0; i < count; i++) {
    readVarint(r) // length
    r.pos++ // attributes
    readVarint(r) // timestamp delta (fits: batches span no time)
    const offsetDelta = readVarint(r)
    const keyLength = readVarint(r)
    const key = keyLength < 0 ? null : body.subarray(r.pos, r.pos + keyLength)
    if (keyLength > 0) r.pos += keyLength
    const valueLength = readVarint(r)
    const value = body.subarray(r.pos, r.pos + valueLength)
    r.pos += valueLength
    const headers = readVarint(r)
    let found: string | null = null
    const all: Record<string, string> | undefined = allHeaders ? {} : undefined
    for (let h = 0; h < headers; h++) {
      // Read each length first: `r.pos += readVarint(r)` would add to r.pos as it was before the read.
      const keyLength = readVarint(r)
      const name = body.subarray(r.pos, r.pos + keyLength)
      const match = wanted?.equals(name) === true
      r.pos += keyLength
      const valueLength = readVarint(r) // -1: null value
      if (match && valueLength >= 0) found = body.toString('utf8', r.pos, r.pos + valueLength)
      if (all && valueLength >= 0) all[name.toString()] = body.toString('utf8', r.pos, r.pos + valueLength)
      if (valueLength > 0) r.pos += valueLength
    }
    records.push(
      all
        ? { offsetDelta, key, value, header: found, headers: all }
        : { offsetDelta, key, value, header: found },
    )
  }
  return { firstTimestamp, records }
}

/** A zigzag varint at `r.pos`, moving `r.pos` past it (record lengths, deltas, key/value lengths). */
export function readVarint(r: { buf: Buffer; pos: number }): number {
  let z = 0
  let shift = 0
  for (;;) {
    const b = r.buf[r.pos++]
    if (b === undefined) throw new RangeError('truncated record batch')
    z |= (b & 0x7f) << shift
    if ((b & 0x80) === 0) break
    shift += 7
  }
  return (z >>> 1) ^ -(z & 1)
}
