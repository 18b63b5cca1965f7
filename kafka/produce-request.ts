import { type Reader, Writer } from '@platformatic/kafka'

/**
 * Produce v9 carrying record batches that are already encoded (by the decode workers) — the one
 * request @platformatic/kafka cannot write for us, since its own writer encodes records itself —
 * and its response, read for the error codes alone.
 *
 *   Produce Request (Version: 9) => transactional_id acks timeout_ms [topic_data] TAG_BUFFER
 *     transactional_id => COMPACT_NULLABLE_STRING
 *     topic_data => name [partition_data] TAG_BUFFER
 *       name => COMPACT_STRING
 *       partition_data => index records TAG_BUFFER
 *         records => COMPACT_RECORDS (one RecordBatch v2)
 */
export const PRODUCE_API = { key: 0, version: 9 } as const
export const ACKS_ALL = -1

export interface PartitionRecords {
  readonly topic: string
  readonly partition: number
  /** Exactly one record batch (brokers refuse more per partition since Produce v3). */
  readonly batch: Buffer
}

/**
 * The timeout_ms a Produce asks of the broker, given the time left before adgate gives up on the
 * request (and closes its connection, see Cluster.request): that time less a tenth (at most 1 s)
 * for the answer to travel back. A produce held by the broker (acks=all waiting for replicas) is
 * then answered REQUEST_TIMED_OUT, which is retried and keeps the connection, before the local
 * deadline would close it.
 */
export function brokerTimeoutMs(timeLeftMs: number): number {
  return Math.max(1, Math.floor(timeLeftMs - Math.min(1000, timeLeftMs / 10)))
}

/**
 * The request body, its framing written into one buffer and the batches appended as they are (no
 * copy here: the connection joins the pieces once, with its header): a Produce goes per HTTP
 * request at moderate rates, where the library's writer made a Buffer per field.
 */
export function writeProduceRequest(timeoutMs: number, data: readonly PartitionRecords[]): Writer {
  const byTopic = new Map<string, PartitionRecords[]>()
  let size = 1 + 2 + 4 + 5 + 1
  for (const d of data) {
    const list = byTopic.get(d.topic)
    if (list) list.push(d)
    else {
      byTopic.set(d.topic, [d])
      size += 5 + Buffer.byteLength(d.topic) + 5 + 1
    }
    size += 4 + 5 + 1
  }
  const frame = Buffer.allocUnsafe(size)
  const out = Writer.create()
  let pos = 0
  let cut = 0
  frame[pos++] = 0 // transactional_id: null
  pos = frame.writeInt16BE(ACKS_ALL, pos)
  pos = frame.writeInt32BE(timeoutMs, pos)
  pos = writeUnsignedVarInt(frame, pos, byTopic.size + 1)
  for (const [topic, parts] of byTopic) {
    pos = writeUnsignedVarInt(frame, pos, Buffer.byteLength(topic) + 1)
    pos += frame.write(topic, pos)
    pos = writeUnsignedVarInt(frame, pos, parts.length + 1)
    for (const p of parts) {
      pos = frame.writeInt32BE(p.partition, pos)
      pos = writeUnsignedVarInt(frame, pos, p.batch.length + 1)
      out.append(frame.subarray(cut, pos)).append(p.batch)
      cut = pos
      frame[pos++] = 0 // the partition's tagged fields
    }
    frame[pos++] = 0 // the topic's tagged fields
  }
  frame[pos++] = 0 // the request's tagged fields
  return out.append(frame.subarray(cut, pos))
}

/** Kafka's unsigned varint (the compact lengths), at `pos`; returns the position after it. */
function writeUnsignedVarInt(buf: Buffer, pos: number, value: number): number {
  let v = value >>> 0
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80
    v >>>= 7
  }
  buf[pos++] = v
  return pos
}

export interface PartitionResult {
  readonly topic: string
  readonly partition: number
  readonly errorCode: number
}

/**
 * Per-partition error codes, read from the response's bytes: the library's parser builds every
 * field (three BigInts per partition) and throws for any error code, once per HTTP request at
 * moderate rates; the sink needs the codes alone. A response cut short throws (RangeError): the
 * connection is then dropped and the batches sent again, as for any unreadable answer.
 *
 *   Produce Response (Version: 9) => [responses] throttle_time_ms TAG_BUFFER
 *     responses => name [partition_responses] TAG_BUFFER
 *       partition_responses => index error_code base_offset log_append_time_ms log_start_offset
 *                              [record_errors] error_message TAG_BUFFER
 *         record_errors => batch_index batch_index_error_message TAG_BUFFER
 */
export function parseProduceResponse(
  _correlationId: number,
  _apiKey: number,
  _apiVersion: number,
  reader: Reader,
): PartitionResult[] {
  const r: Cursor = { buf: reader.buffer.buffer, pos: reader.position }
  const out: PartitionResult[] = []
  for (let topics = readUnsignedVarInt(r) - 1; topics > 0; topics--) {
    const nameLength = readUnsignedVarInt(r) - 1
    const nameEnd = r.pos + nameLength
    const topic = r.buf.toString('utf8', r.pos, nameEnd)
    r.pos = nameEnd
    for (let parts = readUnsignedVarInt(r) - 1; parts > 0; parts--) {
      const partition = r.buf.readInt32BE(r.pos)
      const errorCode = r.buf.readInt16BE(r.pos + 4)
      r.pos += 4 + 2 + 8 + 8 + 8 // index, error_code, base_offset, log_append_time_ms, log_start_offset
      for (let errors = readUnsignedVarInt(r) - 1; errors > 0; errors--) {
        r.pos += 4 // batch_index
        skipCompactString(r)
        skipTaggedFields(r)
      }
      skipCompactString(r) // error_message
      skipTaggedFields(r)
      out.push({ topic, partition, errorCode })
    }
    skipTaggedFields(r)
  }
  r.buf.readInt32BE(r.pos) // throttle_time_ms: the response is whole
  return out
}

interface Cursor {
  readonly buf: Buffer
  pos: number
}

function readUnsignedVarInt(r: Cursor): number {
  let value = 0
  for (let shift = 0; ; shift += 7) {
    const b = r.buf[r.pos++]
    if (b === undefined || shift > 28) throw new RangeError('Produce response: truncated varint')
    value |= (b & 0x7f) << shift
    if ((b & 0x80) === 0) return value >>> 0
  }
}

/** A COMPACT_NULLABLE_STRING (length + 1, 0 for null). */
function skipCompactString(r: Cursor): void {
  const length = readUnsignedVarInt(r)
  if (length > 0) r.pos += length - 1
}

/** TAG_BUFFER: a count, then per field its tag, size and bytes. */
function skipTaggedFields(r: Cursor): void {
  for (let fields = readUnsignedVarInt(r); fields > 0; fields--) {
    readUnsignedVarInt(r) // tag
    const size = readUnsignedVarInt(r)
    r.pos += size
  }
}
