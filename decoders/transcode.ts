import { isUtf8 } from 'node:buffer'
import { EVENT_INFO, type EventType, eventKey } from '../events/catalog.js'
import { bodyError } from '../events/errors.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import { framedBytes, WIRE_HEADER_BYTES, writeWireHeader, writeWithStamps } from '../events/wire.js'
import { decodeJson, nestedTooDeep, rawOf, TOO_DEEP } from './json.js'
import { type NativeAddon, type NativeTranscoder, nativeAddon } from './native-addon.js'
import { describeSchema, type SchemaDescription, scalarReader, viewReader } from './native-schema.js'
import { Violation } from './normalize.js'
import { normalizerFor } from './normalizers.js'
import type { Decoded, DecodeOptions, Rejection, Undecodable } from './result.js'
import { overBudget, rejection, singleRejection, stamp, tooCostly } from './result.js'

/**
 * Bodies to Confluent wire-format Avro values, the one result the workers read whatever the
 * encoding. JSON and NDJSON go straight there, without building event objects when the native
 * addon (native/, simdjson On-Demand) is built; CSV and Avro through their decoders
 * (transcodeDecoded). The JS decoder (json.ts + normalize.ts, then avsc) is the reference and the fallback;
 * both give byte-identical values and identical rejections (test/decoders/transcode.test.ts).
 *
 * The native side accepts only events it can prove valid exactly as the JS normalizer would, and
 * hands every other event back ("deferred") with its NDJSON line or array index: the JS normalizer
 * then decides it and words its rejection, so reasons are the JS decoder's by construction.
 * Bodies it cannot read as a whole (malformed JSON — whose message comes from V8's JSON.parse —,
 * not an object or array, empty, over the event limit, not UTF-8) go to the JS decoder whole.
 */
export interface Transcoded {
  readonly ok: true
  /**
   * Every accepted event's wire-format value and Kafka key, back to back. From the native path
   * it may be the thread's reused output buffer (outScratch): read it before the next body.
   */
  readonly buffer: Buffer
  /**
   * SPAN numbers per accepted event, in body order: its body index, its value's start and end,
   * its key's start and end (offsets in buffer; the key is the UTF-8 of its type's key field).
   */
  readonly spans: Uint32Array
  readonly count: number
  readonly rejects: Rejection[]
  /** With a projection: per accepted event, the projected fields' canonical values by name. */
  readonly views?: Record<string, unknown>[]
  /** Avro bodies in adgate's own schema: per accepted event, its record's bytes as received. */
  readonly records?: Buffer[]
}

export const SPAN = 5

export type TranscodeResult = Transcoded | Undecodable

// ADGATE_NATIVE, handed to each thread as a value (setNativeEnabled), never read from the environment.
let enabled = true

function loadBinding(): { binding: NativeAddon | null; why: string } {
  if (!enabled) return { binding: null, why: 'ADGATE_NATIVE=0' }
  const { addon, why } = nativeAddon()
  return { binding: addon, why }
}

// Loaded on first use, after the thread's owner had its say through setNativeEnabled.
let loaded: { binding: NativeAddon | null; why: string } | null = null

/** Whether JSON bodies in this thread may take the native path (ADGATE_NATIVE); call before the first body. */
export function setNativeEnabled(on: boolean): void {
  if (on === enabled) return
  enabled = on
  loaded = null
  compiled.clear()
}

function binding(): NativeAddon | null {
  loaded ??= loadBinding()
  return loaded.binding
}

/** Whether JSON bodies take the native path in this thread, and why not (for the start-up log). */
export function nativeStatus(): { readonly native: boolean; readonly reason: string } {
  const b = binding()
  return { native: b !== null, reason: b ? '' : loaded!.why.split('\n')[0] || 'not built' }
}

interface Compiled {
  readonly transcoder: NativeTranscoder | null
  readonly projection: readonly string[]
  /** Builds one event's view from the native output (with a projection). */
  readonly view: ((buf: Buffer, offsets: Uint32Array, at: number) => Record<string, unknown>) | null
}

// Per thread: one transcoder per event type and projection (each holds its parser and buffers).
const compiled = new Map<string, Compiled>()

function compiledFor(type: EventType, projection: readonly string[]): Compiled {
  const id = `${type}:${projection.join(',')}`
  let c = compiled.get(id)
  if (!c) {
    let d: SchemaDescription | null = null
    try {
      d = describeSchema(EVENT_SCHEMAS[type], EVENT_INFO[type].keyField, projection)
    } catch {
      // A projection the addon cannot return (a nested field): such bodies take the JS path.
    }
    const b = binding()
    const fields = d ? d.nodes[d.root]!.fields! : []
    const readers = d?.projection?.map((i) => scalarReader(d.nodes, fields[i]!.node)) ?? []
    c = {
      transcoder: b && d ? new b.Transcoder(d) : null,
      projection,
      view: projection.length > 0 && d ? viewReader(projection, readers) : null,
    }
    // Projections change with the rules version: keep the cache bounded across hot reloads.
    if (compiled.size >= 64) compiled.clear()
    compiled.set(id, c)
  }
  return c
}

const NO_PROJECTION: readonly string[] = []

/**
 * This thread's native-path counts: events the addon encoded, events it deferred to the JS
 * normalizer, and bodies it handed to the JS decoder whole. Deferring is correct but slower.
 */
export const nativeCounts = { encoded: 0, deferred: 0, wholeBodyFallbacks: 0 }

/** Transcode a JSON (`ndjson` false) or NDJSON body, natively when the addon is built. */
export function transcodeJson(
  body: Buffer,
  ndjson: boolean,
  options: DecodeOptions,
  projection: readonly string[] = NO_PROJECTION,
): TranscodeResult {
  const c = compiledFor(options.type, projection)
  if (c.transcoder === null) return transcodeJsonJs(body, ndjson, options, projection)
  return transcodeNative(c, body, ndjson, options)
}

/**
 * The native path only (tests compare it with the JS path); null when the addon is not built.
 * A projection the addon cannot return takes the JS path there too, as in transcodeJson.
 */
export function transcodeJsonNative(
  body: Buffer,
  ndjson: boolean,
  options: DecodeOptions,
  projection: readonly string[] = NO_PROJECTION,
): TranscodeResult | null {
  if (binding() === null) return null
  const c = compiledFor(options.type, projection)
  return c.transcoder === null
    ? transcodeJsonJs(body, ndjson, options, projection)
    : transcodeNative(c, body, ndjson, options)
}

/**
 * Where the addon writes its output, reused by every body of this thread: a new Buffer per body
 * was an allocation outside V8's heap per request (27 KB for 100 impressions), and such bytes are
 * what start its mark-compacts. So a native Transcoded's `buffer` holds only until this thread's
 * next transcodeJson: the decode task copies every value into its record batches before the next.
 */
let outScratch = Buffer.allocUnsafeSlow(64 * 1024)
const MAX_OUT_SCRATCH = 8 << 20

function transcodeNative(
  c: Compiled,
  body: Buffer,
  ndjson: boolean,
  options: DecodeOptions,
): TranscodeResult {
  // The JS decoder checks UTF-8 before anything else; so does this path (Node's simdutf check).
  if (!isUtf8(body)) return fallBack(body, ndjson, options, c.projection)
  const r = c.transcoder!.transcode(
    body,
    ndjson,
    options.maxEvents,
    options.ingestTime,
    options.source,
    outScratch,
  )
  if (r === undefined) return fallBack(body, ndjson, options, c.projection)
  const { meta, deferred, projected } = r
  let out: Buffer
  if (r.out === undefined) out = outScratch.subarray(0, r.outLength)
  else {
    out = r.out
    // Did not fit: the next body of this size will.
    if (out.length > outScratch.length && out.length <= MAX_OUT_SCRATCH)
      outScratch = Buffer.allocUnsafeSlow(Math.min(MAX_OUT_SCRATCH, 2 * out.length))
  }
  nativeCounts.encoded += meta.length / SPAN
  nativeCounts.deferred += deferred.length / 3
  let views: Record<string, unknown>[] | undefined
  if (c.view !== null) {
    const count = meta.length / SPAN
    const width = c.projection.length
    views = new Array(count)
    for (let e = 0; e < count; e++) views[e] = c.view(out, projected!, e * width)
  }
  if (deferred.length === 0)
    return {
      ok: true,
      buffer: out,
      spans: meta,
      count: meta.length / SPAN,
      rejects: [],
      ...(views ? { views } : {}),
    }

  // Deferred events: the JS normalizer decides them, as decodeJson would.
  const encoder = new JsEncoder(options, c.projection)
  const rejects: Rejection[] = []
  // As decodeJson: a document nested too deep for JSON.parse to be cheap is refused whole.
  if (!ndjson && nestedTooDeep(body.toString('utf8')))
    return { ok: false, error: bodyError('MALFORMED_BODY', TOO_DEEP) }
  for (let d = 0; d < deferred.length; d += 3) {
    const index = deferred[d]!
    const bytes = body.subarray(deferred[d + 1]!, deferred[d + 2]!)
    let value: unknown
    let raw: Buffer
    if (overBudget(options, d / 3)) return tooCostly()
    if (ndjson) {
      raw = Buffer.from(bytes)
      const line = raw.toString('utf8')
      if (nestedTooDeep(line)) {
        rejects.push(singleRejection(index, null, `invalid JSON: ${TOO_DEEP}`, raw))
        continue
      }
      try {
        value = JSON.parse(line)
      } catch (err) {
        rejects.push(singleRejection(index, null, `invalid JSON: ${(err as Error).message}`, raw))
        continue
      }
    } else {
      // An array element, parsed alone. On-Demand skips what it does not read without fully
      // checking it: an element JSON.parse refuses makes the document malformed, which the JS
      // decoder's parse of the whole body then reports.
      try {
        value = JSON.parse(bytes.toString('utf8'))
      } catch {
        return fallBack(body, ndjson, options, c.projection)
      }
      raw = rawOf(value)
    }
    encoder.add(value, index, raw, options, rejects)
  }
  return merge(out, meta, views, encoder, rejects)
}

function fallBack(
  body: Buffer,
  ndjson: boolean,
  options: DecodeOptions,
  projection: readonly string[],
): TranscodeResult {
  nativeCounts.wholeBodyFallbacks++
  return transcodeJsonJs(body, ndjson, options, projection)
}

/** The native events and the JS-decided ones, in one buffer, in body order. */
function merge(
  out: Buffer,
  meta: Uint32Array,
  views: Record<string, unknown>[] | undefined,
  encoder: JsEncoder,
  rejects: Rejection[],
): Transcoded {
  const js = encoder.finish()
  const buffer = js.count === 0 ? out : Buffer.concat([out, js.buffer])
  const count = meta.length / SPAN + js.count
  const spans = new Uint32Array(count * SPAN)
  const merged: Record<string, unknown>[] | undefined = views ? [] : undefined
  let a = 0
  let b = 0
  const shift = out.length
  for (let e = 0; e < count; e++) {
    const fromNative = b >= js.count || (a < meta.length / SPAN && meta[a * SPAN]! < js.spans[b * SPAN]!)
    const to = e * SPAN
    if (fromNative) {
      spans.set(meta.subarray(a * SPAN, a * SPAN + SPAN), to)
      merged?.push(views![a]!)
      a++
    } else {
      const from = b * SPAN
      spans[to] = js.spans[from]!
      for (let k = 1; k < SPAN; k++) spans[to + k] = js.spans[from + k]! + shift
      merged?.push(js.views![b]!)
      b++
    }
  }
  return { ok: true, buffer, spans, count, rejects, ...(merged ? { views: merged } : {}) }
}

/** The JS path: decodeJson builds the canonical objects, avsc encodes them. */
export function transcodeJsonJs(
  body: Buffer,
  ndjson: boolean,
  options: DecodeOptions,
  projection: readonly string[] = NO_PROJECTION,
): TranscodeResult {
  const decoded = decodeJson(body, ndjson, options)
  return decoded.ok ? transcodeDecoded(decoded, options, projection) : decoded
}

/**
 * A decoder's canonical events to wire-format values (the JS JSON path, CSV and Avro). Records of
 * an Avro body in adgate's own schema keep their bytes, only the gateway's fields spliced in.
 */
export function transcodeDecoded(
  decoded: Decoded,
  options: DecodeOptions,
  projection: readonly string[] = NO_PROJECTION,
): Transcoded {
  const encoder = new JsEncoder(options, projection, decoded.records !== undefined)
  const { events, records } = decoded
  // Decoders keep body order; the index of each accepted event is the next one not rejected.
  let r = 0
  let index = 0
  let refused: Rejection[] | null = null
  for (let i = 0; i < events.length; i++) {
    while (r < decoded.rejects.length && decoded.rejects[r]!.index === index) {
      r++
      index++
    }
    const event = events[i] as Record<string, unknown>
    const record = records?.[i]
    const reason = encoder.push(event, index, record)
    if (reason !== null) {
      refused ??= []
      const raw = record ? Buffer.from(record) : Buffer.from(JSON.stringify(event))
      refused.push(singleRejection(index, null, reason, raw))
    }
    index++
  }
  const js = encoder.finish()
  return {
    ok: true,
    buffer: js.buffer,
    spans: js.spans,
    count: js.count,
    rejects:
      refused === null ? decoded.rejects : decoded.rejects.concat(refused).sort((a, b) => a.index - b.index),
    ...(js.views ? { views: js.views } : {}),
    ...(js.records ? { records: js.records } : {}),
  }
}

/** avsc encoding of canonical events into one growing buffer, with their spans. */
class JsEncoder {
  private buf = Buffer.allocUnsafe(16 * 1024)
  private at = 0
  private spans = new Uint32Array(64 * SPAN)
  private count = 0
  private readonly views: Record<string, unknown>[] | undefined
  private readonly records: Buffer[] | undefined
  private readonly schema
  private readonly normalize

  constructor(
    private readonly options: DecodeOptions,
    private readonly projection: readonly string[],
    keepRecords = false,
  ) {
    this.schema = EVENT_SCHEMAS[options.type]
    this.normalize = normalizerFor(options.type, 'json')
    this.views = projection.length > 0 ? [] : undefined
    this.records = keepRecords ? [] : undefined
  }

  /** A deferred event: normalize it as decodeJson does, then encode it or reject it. */
  add(value: unknown, index: number, raw: Buffer, options: DecodeOptions, rejects: Rejection[]): void {
    const out = this.normalize(value)
    if (out instanceof Violation) {
      rejects.push(rejection(index, out.errors, raw))
      return
    }
    stamp(out as object, options)
    const refused = this.push(out as Record<string, unknown>, index)
    if (refused !== null) rejects.push(singleRejection(index, null, refused, raw))
  }

  /**
   * Encode one event (from its Avro record's bytes when given); a value avsc refuses is that
   * event's rejection (the reason), never a throw.
   */
  push(event: Record<string, unknown>, index: number, record?: Buffer): string | null {
    const key = eventKey(this.options.type, event)
    const start = this.at
    let end: number
    for (;;) {
      if (this.buf.length - start > WIRE_HEADER_BYTES + 3 * key.length) {
        try {
          end = this.writeValue(event, record, start)
        } catch (err) {
          return encodeRefusal(err)
        }
        if (end >= 0 && this.buf.length - end >= 3 * key.length) break
      }
      const bigger = Buffer.allocUnsafe(this.buf.length * 2)
      this.buf.copy(bigger, 0, 0, start)
      this.buf = bigger
    }
    const keyEnd = end + this.buf.write(key, end)
    this.at = keyEnd
    if ((this.count + 1) * SPAN > this.spans.length) {
      const bigger = new Uint32Array(this.spans.length * 2)
      bigger.set(this.spans)
      this.spans = bigger
    }
    const s = this.count * SPAN
    this.spans[s] = index
    this.spans[s + 1] = start
    this.spans[s + 2] = end
    this.spans[s + 3] = end
    this.spans[s + 4] = keyEnd
    this.count++
    if (this.views) {
      const view: Record<string, unknown> = {}
      for (const f of this.projection) view[f] = event[f]
      this.views.push(view)
    }
    if (record !== undefined) this.records?.push(record)
    return null
  }

  /** Writes the value at `start`; returns its end, negative when it does not fit (grow and retry). */
  private writeValue(event: Record<string, unknown>, record: Buffer | undefined, start: number): number {
    const { ingestTime, source } = this.options
    if (record !== undefined) {
      if (this.buf.length - start < framedBytes(record, source)) return -1
      return writeWithStamps(this.buf, start, this.schema, record, ingestTime, source)
    }
    writeWireHeader(this.buf, start, this.schema.id)
    return this.schema.type.encode(event, this.buf, start + WIRE_HEADER_BYTES)
  }

  finish(): {
    buffer: Buffer
    spans: Uint32Array
    count: number
    views?: Record<string, unknown>[]
    records?: Buffer[]
  } {
    return {
      buffer: this.buf.subarray(0, this.at),
      spans: this.spans.subarray(0, this.count * SPAN),
      count: this.count,
      ...(this.views ? { views: this.views } : {}),
      ...(this.records ? { records: this.records } : {}),
    }
  }
}

/** Why avsc refused an event the normalizer passed: a per-event rejection, not a failed batch. */
export function encodeRefusal(err: unknown): string {
  return `cannot be encoded in the Avro schema: ${(err as Error).message}`
}
