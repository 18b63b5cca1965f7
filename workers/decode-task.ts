import type { ContentEncoding } from '../decoders/content-encoding.js'
import { decodeBody } from '../decoders/decode.js'
import type { Encoding } from '../decoders/result.js'
import { EVENT_INFO, type EventType } from '../events/catalog.js'
import type { BodyError } from '../events/errors.js'
import { DLQ_SCHEMA, EVENT_SCHEMAS, type SchemaVersion } from '../events/schemas.js'
import { WIRE_HEADER_BYTES, writeWireHeader } from '../events/wire.js'

/**
 * One worker task: several request bodies, coalesced by the pool into one ArrayBuffer, decoded,
 * validated and encoded in the Confluent wire format, so the main thread only hands bytes to Kafka.
 * Everything a task returns travels back in one transferred ArrayBuffer plus small metadata.
 */
export interface BodyMeta {
  readonly offset: number
  readonly length: number
  readonly type: EventType
  readonly encoding: Encoding
  readonly contentEncoding: ContentEncoding
  readonly source: string
  readonly requestId: string
  readonly ingestTime: number
}

export type Fault = 'crash' | 'hang'

export interface DecodeTask {
  /** Fault tests only: make this task kill or hang its worker thread. */
  readonly fault?: Fault
  readonly buffer: ArrayBuffer
  readonly bodies: readonly BodyMeta[]
  readonly maxBytes: number
  readonly maxEvents: number
}

export interface RejectInfo {
  readonly index: number
  readonly field: string | null
  readonly reason: string
}

export interface BodyOutcome {
  /** Whole-body failure (400/413/415); events and dead letters may still be present for the DLQ. */
  readonly error: BodyError | null
  /** Events accepted, as [start, end) offsets of wire-format values in the task's output buffer. */
  readonly events: number
  readonly rejects: RejectInfo[]
  /** Kafka keys of the accepted events, in order. */
  readonly keys: string[]
  /** Offsets (start,end pairs) of values: `events` event values, then one dead letter per reject or error. */
  readonly spans: number[]
}

export interface TaskResult {
  readonly buffer: ArrayBuffer
  readonly outcomes: BodyOutcome[]
}

/** Grows as needed; one per worker thread, reused across tasks. */
class OutputBuffer {
  buf = Buffer.allocUnsafeSlow(1 << 20)
  pos = 0

  reset(): void {
    this.pos = 0
  }

  /** Write one wire-format value; returns its start. */
  write(schema: SchemaVersion, value: unknown): number {
    const start = this.pos
    for (;;) {
      if (this.buf.length - start >= WIRE_HEADER_BYTES) {
        writeWireHeader(this.buf, start, schema.id)
        // avsc returns a negative position when the value did not fit: grow and retry.
        const end = schema.type.encode(value, this.buf, start + WIRE_HEADER_BYTES)
        if (end >= 0) {
          this.pos = end
          return start
        }
      }
      const next = Buffer.allocUnsafeSlow(this.buf.length * 2)
      this.buf.copy(next, 0, 0, start)
      this.buf = next
    }
  }

  /** A copy sized to what was written, transferable to the main thread. */
  take(): ArrayBuffer {
    const out = new ArrayBuffer(this.pos)
    new Uint8Array(out).set(this.buf.subarray(0, this.pos))
    return out
  }
}

const output = new OutputBuffer()

export function runDecodeTask(task: DecodeTask): TaskResult {
  output.reset()
  const outcomes: BodyOutcome[] = []
  const input = Buffer.from(task.buffer)
  for (const meta of task.bodies) {
    const body = input.subarray(meta.offset, meta.offset + meta.length)
    outcomes.push(decodeOne(body, meta, task))
  }
  return { buffer: output.take(), outcomes }
}

function decodeOne(body: Buffer, meta: BodyMeta, task: DecodeTask): BodyOutcome {
  const result = decodeBody(body, {
    type: meta.type,
    encoding: meta.encoding,
    contentEncoding: meta.contentEncoding,
    maxBytes: task.maxBytes,
    maxEvents: task.maxEvents,
    ingestTime: meta.ingestTime,
    source: meta.source,
  })
  const spans: number[] = []
  const schema = EVENT_SCHEMAS[meta.type]
  const keyField = EVENT_INFO[meta.type].keyField
  if (!result.ok) {
    const start = output.write(
      DLQ_SCHEMA,
      deadLetter(meta, -1, null, `${result.error.code}: ${result.error.detail}`, body),
    )
    spans.push(start, output.pos)
    return { error: result.error, events: 0, rejects: [], keys: [], spans }
  }
  const keys: string[] = new Array(result.events.length)
  for (let i = 0; i < result.events.length; i++) {
    const event = result.events[i] as Record<string, unknown>
    spans.push(output.write(schema, event), output.pos)
    keys[i] = event[keyField] as string
  }
  const rejects: RejectInfo[] = new Array(result.rejects.length)
  for (let i = 0; i < result.rejects.length; i++) {
    const r = result.rejects[i]!
    rejects[i] = { index: r.index, field: r.field, reason: r.reason }
    spans.push(output.write(DLQ_SCHEMA, deadLetter(meta, r.index, r.field, r.reason, r.raw)), output.pos)
  }
  return { error: null, events: result.events.length, rejects, keys, spans }
}

/** Dead letters keep the raw bytes, up to what fits comfortably in one Kafka record. */
export const MAX_DEAD_LETTER_RAW_BYTES = 512 * 1024

function deadLetter(meta: BodyMeta, index: number, field: string | null, why: string, bytes: Buffer) {
  const truncated = bytes.length > MAX_DEAD_LETTER_RAW_BYTES
  const raw = truncated ? bytes.subarray(0, MAX_DEAD_LETTER_RAW_BYTES) : bytes
  const reason = truncated ? `${why} (raw truncated from ${bytes.length} bytes)` : why
  return {
    event_type: meta.type,
    encoding: meta.encoding,
    index,
    field,
    reason,
    source: meta.source,
    request_id: meta.requestId,
    received_time: meta.ingestTime,
    raw,
  }
}
