import type { ContentEncoding } from '../decoders/content-encoding.js'
import { threadCpuMs } from '../decoders/cpu-clock.js'
import { transcodeBody } from '../decoders/decode.js'
import { type Encoding, type FieldError, type Rejection, singleRejection } from '../decoders/result.js'
import { SPAN } from '../decoders/transcode.js'
import { DLQ_TOPIC, EVENT_INFO, type EventType } from '../events/catalog.js'
import type { BodyError } from '../events/errors.js'
import { DLQ_SCHEMA, EVENT_SCHEMAS, type SchemaVersion } from '../events/schemas.js'
import { WIRE_HEADER_BYTES, writeWireHeader } from '../events/wire.js'
import { partitionFor } from '../kafka/protocol/murmur2.js'
import { type EncodedBatch, encodeHeaders, RecordBatchBuilder } from '../kafka/protocol/record-batch.js'
import type { RuleReject, RuleResult, RuleSet } from '../quality/rules.js'
import { activeRules } from '../quality/rules-channel.js'

/** What the gateway knows of a request body besides its bytes. */
export interface BodyFacts {
  readonly type: EventType
  readonly encoding: Encoding
  readonly contentEncoding: ContentEncoding
  readonly source: string
  readonly requestId: string
  readonly ingestTime: number
}

/** A body of a task: where its bytes are in the task's buffers, and its facts. */
export interface BodyMeta extends BodyFacts {
  /** Index in DecodeTask.buffers. */
  readonly buffer: number
  readonly offset: number
  readonly length: number
}

export type Fault = 'crash' | 'hang'

/**
 * One worker task: the request bodies that arrived together, decoded, validated, encoded in the
 * Confluent wire format and packed into LZ4-compressed Kafka record batches, one per partition.
 * The main thread then only hands bytes to the brokers (a client library's per-record encoding on
 * the main thread topped out near 85k records/s; see bench/results/gateway.json).
 */
export interface DecodeTask {
  /** Fault tests only: make this task kill or hang its worker thread. */
  readonly fault?: Fault
  /** The bodies' bytes (transferred to the worker, see workers/pool.ts taskBuffers). */
  readonly buffers: readonly ArrayBuffer[]
  readonly bodies: readonly BodyMeta[]
  readonly maxBytes: number
  readonly maxEvents: number
  /** Per-body CPU budget (ADGATE_REQUEST_CPU_MS): a body still decoding after it is refused. */
  readonly budgetMs?: number
  /** Partition count per topic, for Kafka's default (murmur2) partitioner. */
  readonly partitions: Readonly<Record<string, number>>
}

/** A rejected event in the answer: its first problem (field, reason) and all of them (errors). */
export interface RejectInfo extends FieldError {
  readonly index: number
  readonly errors: readonly FieldError[]
}

export interface BodyOutcome {
  /** Whole-body failure (400/413/415); its dead letter is in the task's batches. */
  readonly error: BodyError | null
  readonly events: number
  /** Rejected events (their dead letters are in the task's batches). */
  readonly rejected: number
  /**
   * Where the rejected events' `errors` array of the answer is in TaskResult.rejects, as JSON
   * (RejectInfo[]); null when none. The worker writes it, inside the body's measured time, so a body
   * of many invalid events is charged for its answer and the event loop only copies bytes.
   */
  readonly rejects: { readonly offset: number; readonly length: number } | null
  /** Data-quality rules: accepted events carrying flags, and events rejected by a rule (in `rejects`). */
  readonly flagged: number
  readonly ruleRejects: number
  /** The worker thread's time on this body, in ms (the gateway charges refused work to its client). */
  readonly cpuMs: number
}

export interface TaskResult {
  /** Every batch of the task, back to back. */
  readonly buffer: ArrayBuffer
  /** Every body's rejects JSON (BodyOutcome.rejects), back to back. */
  readonly rejects: ArrayBuffer
  readonly batches: EncodedBatch[]
  readonly outcomes: BodyOutcome[]
  /** For metrics, aggregated per task: the records' bytes before LZ4, and the thread time spent. */
  readonly rawBytes: number
  readonly busyMs: number
}

/** Dead letters keep the raw bytes, up to what fits comfortably in one Kafka record. */
export const MAX_DEAD_LETTER_RAW_BYTES = 512 * 1024

/** One wire-format value at a time, in a buffer reused by the thread. */
class ValueScratch {
  buf = Buffer.allocUnsafeSlow(64 * 1024)

  encode(schema: SchemaVersion, value: unknown): Buffer {
    for (;;) {
      writeWireHeader(this.buf, 0, schema.id)
      // avsc returns a negative position when the value did not fit: grow and retry.
      const end = schema.type.encode(value, this.buf, WIRE_HEADER_BYTES)
      if (end >= 0) return this.buf.subarray(0, end)
      this.buf = Buffer.allocUnsafeSlow(this.buf.length * 2)
    }
  }
}

const scratch = new ValueScratch()
const builder = new RecordBatchBuilder()
let deadLetterCounter = 0

export function runDecodeTask(task: DecodeTask): TaskResult {
  const started = performance.now()
  const outcomes: BodyOutcome[] = []
  const inputs = task.buffers.map((b) => Buffer.from(b))
  // Once per task: the rules version in force (recompiled only when the main thread published one).
  const rules = activeRules()
  // One clock read per body (and one more): a body's end is the next one's start (a read is a
  // system call, ~0.7 µs, against ~25 µs for a one-event body; bench/cpu-clock.ts).
  let start = threadCpuMs()
  const rejectsJson: Buffer[] = []
  let rejectsBytes = 0
  for (const meta of task.bodies) {
    const deadline = task.budgetMs === undefined ? undefined : start + task.budgetMs
    const body = inputs[meta.buffer]!.subarray(meta.offset, meta.offset + meta.length)
    const decided = decodeOne(body, meta, task, rules, deadline)
    const json = decided.rejects.length === 0 ? null : Buffer.from(JSON.stringify(decided.rejects))
    const end = threadCpuMs()
    // Written out, not spread: one object shape for every body (spreading built new hidden classes
    // per task, a few µs per request in the profile).
    outcomes.push({
      error: decided.error,
      events: decided.events,
      rejected: decided.rejects.length,
      rejects: json === null ? null : { offset: rejectsBytes, length: json.length },
      flagged: decided.flagged,
      ruleRejects: decided.ruleRejects,
      cpuMs: end - start,
    })
    if (json !== null) {
      rejectsJson.push(json)
      rejectsBytes += json.length
    }
    start = end
  }
  const { buffer, batches, rawBytes } = builder.finish(Date.now())
  return {
    buffer: transferable(buffer),
    rejects: transferable(rejectsJson.length === 1 ? rejectsJson[0]! : Buffer.concat(rejectsJson)),
    batches,
    outcomes,
    rawBytes,
    busyMs: performance.now() - started,
  }
}

/** A copy in an ArrayBuffer of its own, to be transferred to the main thread (not zero-filled first). */
function transferable(bytes: Uint8Array): ArrayBuffer {
  const out = Buffer.allocUnsafeSlow(bytes.length)
  out.set(bytes)
  return out.buffer as ArrayBuffer
}

/** A body's outcome, before its time is known and its rejects are written as JSON. */
type Decided = Omit<BodyOutcome, 'cpuMs' | 'rejected' | 'rejects'> & { readonly rejects: RejectInfo[] }

/**
 * Every encoding ends as wire-format values and keys (decoders/decode.ts transcodeBody), with no
 * event objects here; data-quality rules read a projection of each event to the fields they use.
 */
function decodeOne(
  body: Buffer,
  meta: BodyMeta,
  task: DecodeTask,
  rules: RuleSet | null,
  deadline: number | undefined,
): Decided {
  const quality = rules?.byType[meta.type] ?? null
  const out = new BodyRecords(meta, task)
  const result = transcodeBody(body, decodeOptions(meta, task, deadline), quality?.fields)
  if (!result.ok) return out.failed(result.error, body)
  const { topic } = EVENT_INFO[meta.type]
  const partitions = task.partitions[topic] ?? 1
  const { buffer, spans, views, records } = result
  // Values and keys as plain Uint8Array views of the output's memory: Buffer#subarray (argument
  // checks, then a FastBuffer), twice per event, showed as up to 5 % of a task's samples.
  const bytes = buffer.buffer
  const base = buffer.byteOffset
  for (let i = 0; i < result.count; i++) {
    const s = i * SPAN
    const value = new Uint8Array(bytes, base + spans[s + 1]!, spans[s + 2]! - spans[s + 1]!)
    const verdict = quality?.evaluate(views![i]!) ?? null
    if (verdict?.reject) {
      // Only Avro bodies keep an accepted event's bytes as sent; otherwise its canonical JSON stands in.
      const raw = records
        ? Buffer.from(records[i]!)
        : Buffer.from(
            JSON.stringify(
              EVENT_SCHEMAS[meta.type].type.fromBuffer(
                buffer.subarray(spans[s + 1]! + WIRE_HEADER_BYTES, spans[s + 2]!),
              ),
            ),
          )
      out.reject(verdict.reject, spans[s]!, raw)
      continue
    }
    const key = new Uint8Array(bytes, base + spans[s + 3]!, spans[s + 4]! - spans[s + 3]!)
    builder.add(topic, partitionFor(key, partitions), key, value, out.headersFor(verdict))
  }
  return out.finish(result.count, result.rejects)
}

function decodeOptions(meta: BodyMeta, task: DecodeTask, deadline: number | undefined) {
  return {
    deadline,
    type: meta.type,
    encoding: meta.encoding,
    contentEncoding: meta.contentEncoding,
    maxBytes: task.maxBytes,
    maxEvents: task.maxEvents,
    ingestTime: meta.ingestTime,
    source: meta.source,
  }
}

/**
 * The records of one body, as the data-quality rules judge them: flagged records carry one more
 * header (its buffer shared by the records with the same flags), rejected ones join the decoder's
 * rejections; every rejection goes to the response and, with its bytes, to the dead-letter topic.
 */
class BodyRecords {
  private readonly headers: Buffer
  private flagHeaders: Map<string, Buffer> | null = null
  /** Events a data-quality rule rejected after decoding. */
  private ruleRejected: Rejection[] | null = null
  private flagged = 0

  constructor(
    private readonly meta: BodyMeta,
    private readonly task: DecodeTask,
  ) {
    this.headers = recordHeaders(meta, null)
  }

  /** A body that cannot be decoded at all: one dead letter with its bytes. */
  failed(error: BodyError, body: Buffer): Decided {
    addDeadLetter(
      this.task,
      this.headers,
      deadLetter(this.meta, singleRejection(-1, null, `${error.code}: ${error.detail}`, body)),
    )
    return { error, events: 0, rejects: [], flagged: 0, ruleRejects: 0 }
  }

  /** An event a rule rejects: kept for the response and, with its bytes, the dead-letter topic. */
  reject(rule: RuleReject, index: number, raw: Buffer): void {
    this.ruleRejected ??= []
    this.ruleRejected.push(singleRejection(index, rule.field, rule.reason, raw))
  }

  /** The headers of an accepted event's record: with its flags, if the rules flagged it. */
  headersFor(verdict: RuleResult | null): Buffer {
    if (verdict === null) return this.headers
    this.flagged++
    const flags = verdict.flags!
    this.flagHeaders ??= new Map()
    let h = this.flagHeaders.get(flags)
    if (h === undefined) {
      h = recordHeaders(this.meta, flags)
      this.flagHeaders.set(flags, h)
    }
    return h
  }

  /** `decoded` events passed the schema; the decoder's and the rules' rejections, in body order. */
  finish(decoded: number, decoderRejects: readonly Rejection[]): Decided {
    const later = this.ruleRejected
    const all =
      later === null ? decoderRejects : decoderRejects.concat(later).sort((a, b) => a.index - b.index)
    const rejects: RejectInfo[] = new Array(all.length)
    for (let i = 0; i < all.length; i++) {
      const r = all[i]!
      rejects[i] = { index: r.index, field: r.field, reason: r.reason, errors: r.errors }
      addDeadLetter(this.task, this.headers, deadLetter(this.meta, r))
    }
    return {
      error: null,
      events: decoded - (later?.length ?? 0),
      rejects,
      flagged: this.flagged,
      ruleRejects: later?.length ?? 0,
    }
  }
}

function recordHeaders(meta: BodyMeta, flags: string | null): Buffer {
  const headers: Record<string, string> = {
    'adgate.source': meta.source,
    'adgate.request_id': meta.requestId,
    'adgate.encoding': meta.encoding,
  }
  if (flags !== null) headers['adgate.quality_flags'] = flags
  return encodeHeaders(headers)
}

// Dead letters have no key; spread them over the partitions in turn.
function addDeadLetter(task: DecodeTask, headers: Buffer, value: unknown): void {
  const partition = deadLetterCounter++ % (task.partitions[DLQ_TOPIC] ?? 1)
  builder.add(DLQ_TOPIC, partition, null, scratch.encode(DLQ_SCHEMA, value), headers)
}

function deadLetter(meta: BodyMeta, rejected: Rejection) {
  const { index, field, reason, errors, raw: bytes } = rejected
  const truncated = bytes.length > MAX_DEAD_LETTER_RAW_BYTES
  return {
    event_type: meta.type,
    encoding: meta.encoding,
    index,
    field,
    reason: truncated ? `${reason} (raw truncated from ${bytes.length} bytes)` : reason,
    errors,
    source: meta.source,
    request_id: meta.requestId,
    received_time: meta.ingestTime,
    raw: truncated ? bytes.subarray(0, MAX_DEAD_LETTER_RAW_BYTES) : bytes,
  }
}
