import type avro from 'avsc'
import { EVENT_TYPES, type EventType } from '../events/catalog.js'
import { bodyError } from '../events/errors.js'
import type { RecordNode } from '../events/schema-model.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import {
  boundedReaderType,
  boundedType,
  InvalidUtf8Error,
  limitAvroItems,
  unlimitAvroItems,
} from './avro-bounds.js'
import { readBlock, readHeader } from './avro-container.js'
import { keepUnknownFields, namesUnknownFields } from './avro-unknown.js'
import { BID_V1, isV1BidSchema, upcastBidV1 } from './bid-upcast.js'
import { Violation } from './normalize.js'
import { normalizerFor } from './normalizers.js'
import type { DecodeOptions, DecodeResult, Rejection } from './result.js'
import { overBudget, rejection, stamp, tooCostly, tooManyEvents } from './result.js'

/**
 * Avro Object Container File bodies. The writer schema in the file header is resolved against
 * adgate's schema (avsc resolvers), so producers on older or newer schema versions both work;
 * then each record's bounds are checked by the same compiled schema as JSON and CSV input.
 */
export function decodeAvro(body: Buffer, options: DecodeOptions, maxInflatedBytes: number): DecodeResult {
  const header = readHeader(body)
  if ('error' in header) {
    return {
      ok: false,
      error: bodyError(header.unsupportedCodec ? 'UNSUPPORTED_AVRO_CODEC' : 'MALFORMED_BODY', header.error),
    }
  }
  const resolved = resolverFor(options, header.writerSchema)
  if (typeof resolved === 'string') return { ok: false, error: bodyError('SCHEMA_MISMATCH', resolved) }
  const { reader, resolver, upcast, writer } = resolved
  const model = upcast ? BID_V1.model : EVENT_SCHEMAS[options.type].model

  const normalize = normalizerFor(options.type, upcast ? 'json' : 'avro')
  const events: object[] = []
  // Same schema as adgate's: the writer's bytes are already what Kafka gets, but for the stamps.
  const records: Buffer[] | undefined = resolver === undefined && !upcast ? [] : undefined
  const rejects: Rejection[] = []
  let index = 0
  let inflated = 0
  try {
    for (let pos = header.end; pos < body.length; ) {
      const block = readBlock(body, pos, header, maxInflatedBytes - inflated)
      if ('error' in block) {
        return {
          ok: false,
          error: bodyError(block.tooLarge ? 'BODY_TOO_LARGE' : 'MALFORMED_BODY', block.error),
        }
      }
      inflated += block.data.length
      limitAvroItems(2 * block.data.length)
      if (index + block.count > options.maxEvents) return tooManyEvents(options.maxEvents)
      let at = 0
      for (let i = 0; i < block.count; i++, index++) {
        if (overBudget(options, index)) return tooCostly()
        let decoded: { value: unknown; offset: number }
        let written: unknown
        try {
          decoded = reader.decode(block.data, at, resolver)
          if (writer !== undefined && decoded.offset >= 0) written = writer.decode(block.data, at).value
        } catch (err) {
          const code = err instanceof InvalidUtf8Error ? 'INVALID_UTF8' : 'MALFORMED_BODY'
          return { ok: false, error: bodyError(code, `record ${index}: ${(err as Error).message}`) }
        }
        if (decoded.offset < 0)
          return { ok: false, error: bodyError('MALFORMED_BODY', `record ${index} is truncated`) }
        const kept = writer && keepUnknownFields(model, decoded.value, written, upcast !== undefined)
        const out =
          kept || normalize(upcast ? upcast(decoded.value as Record<string, unknown>) : decoded.value)
        if (out instanceof Violation) {
          const raw = Buffer.from(block.data.subarray(at, decoded.offset))
          rejects.push(rejection(index, out.errors, raw))
        } else {
          stamp(out as object, options)
          events.push(out as object)
          records?.push(block.data.subarray(at, decoded.offset))
        }
        at = decoded.offset
      }
      if (at !== block.data.length) {
        return {
          ok: false,
          error: bodyError(
            'MALFORMED_BODY',
            `block at byte ${pos} has bytes beyond its ${block.count} records`,
          ),
        }
      }
      pos = block.end
    }
  } finally {
    unlimitAvroItems()
  }
  if (index === 0) return { ok: false, error: bodyError('EMPTY_BODY', 'the container holds no records') }
  return { ok: true, events, rejects, records }
}

interface Resolved {
  reader: avro.Type
  resolver: avro.Resolver | undefined
  /** Older writers whose records resolution cannot map (v1 bids): read with their version, then upcast. */
  upcast?: (value: Record<string, unknown>) => unknown
  /** The writer's own type, when it names fields adgate's does not: records are read with it too, to keep them. */
  writer?: avro.Type
}

/**
 * Build every reader, and the resolution of each event schema as avsc writes it (what adgate's
 * generator and most producers put in the header), when a worker starts: the OpenRTB bid schema
 * takes avsc a hundred milliseconds and more, which the first request should not pay.
 */
export function warmAvroReaders(types: readonly EventType[] = EVENT_TYPES): void {
  for (const type of types)
    resolverFor(
      { type, maxEvents: 1, ingestTime: 0, source: '' },
      JSON.stringify(EVENT_SCHEMAS[type].type.schema()),
    )
}

// Producers send the same few writer schemas over and over; resolving one costs far more than a
// request, so keep them. Bounded in bytes, not only in count: a client inventing large schemas
// (valid or not) must not grow the heap (issue 15: 300 distinct 5 MiB schemas took RSS to 2 GB).
const RESOLVERS = new Map<string, Resolved | string>()
const MAX_RESOLVERS = 256
/** Writer-schema text kept in the cache, in UTF-16 code units (the compiled types grow with it). */
export const MAX_RESOLVER_CHARS = 4 * 1024 * 1024
let resolverChars = 0
/**
 * adgate's own schemas are at most 20 KiB of JSON (avsc's export) and about 440 fields (the
 * OpenRTB 2.6 bid, schemas/bid.v3.avsc; 66 KiB as the .avsc file with docs). Compiling a writer
 * schema costs avsc ~0.1-0.3 ms per field (measured: 3000 fields, 2.3 s of a worker thread), so one
 * far larger than the schema it is resolved against is not a producer's schema but a way to spend
 * the gateway's CPU: refused, by size before it is parsed, by field count (twice the reader's, plus
 * 64) and by record name (what avsc's resolution would refuse anyway) before it is compiled.
 */
export const MAX_WRITER_SCHEMA_BYTES = 128 * 1024

/** The most fields a writer schema for `type` may have. */
export function maxWriterSchemaFields(type: EventType): number {
  return 2 * countFields(EVENT_SCHEMAS[type].json) + 64
}

function resolverFor(options: DecodeOptions, writerSchema: string): Resolved | string {
  if (writerSchema.length > MAX_WRITER_SCHEMA_BYTES)
    return `the writer schema is ${writerSchema.length} bytes; the limit is ${MAX_WRITER_SCHEMA_BYTES}`
  const key = `${options.type}\n${writerSchema}`
  let entry = RESOLVERS.get(key)
  if (entry === undefined) {
    entry = resolve(options.type, writerSchema)
    while (
      RESOLVERS.size >= MAX_RESOLVERS ||
      (RESOLVERS.size > 0 && resolverChars + key.length > MAX_RESOLVER_CHARS)
    ) {
      const oldest = RESOLVERS.keys().next().value!
      RESOLVERS.delete(oldest)
      resolverChars -= oldest.length
    }
    RESOLVERS.set(key, entry)
    resolverChars += key.length
  }
  return entry
}

/** What the writer-schema cache holds (tests: it stays within its bounds). */
export function resolverCacheSize(): { readonly entries: number; readonly chars: number } {
  return { entries: RESOLVERS.size, chars: resolverChars }
}

// adgate's schemas as avsc types of this module's own, so their array counts can be bounded
// (see avro-bounds.ts) without touching the shared types in events/schemas.ts.
const READERS = new Map<EventType, avro.Type>()

function readerFor(type: EventType): avro.Type {
  let reader = READERS.get(type)
  if (!reader) {
    reader = boundedReaderType(EVENT_SCHEMAS[type].json)
    READERS.set(type, reader)
  }
  return reader
}

function resolve(type: EventType, writerSchema: string): Resolved | string {
  try {
    const parsed = JSON.parse(writerSchema) as avro.Schema
    const fields = countFields(parsed)
    const max = maxWriterSchemaFields(type)
    if (fields > max) return `the writer schema has ${fields} fields; the limit is ${max}`
    if (type === 'bid' && isV1BidSchema(parsed)) {
      const v1 = boundedType(BID_V1.json)
      const writer = boundedType(parsed)
      return withUnknown(BID_V1.model, writer, {
        reader: v1,
        resolver: v1.createResolver(writer),
        upcast: upcastBidV1,
      })
    }
    const misnamed = otherRecord(parsed, EVENT_SCHEMAS[type].json)
    if (misnamed !== null) return misnamed
    const writer = boundedType(parsed)
    const reader = readerFor(type)
    // Same schema: read directly, no resolver indirection.
    if (writer.equals(reader)) return { reader, resolver: undefined }
    return withUnknown(EVENT_SCHEMAS[type].model, writer, { reader, resolver: reader.createResolver(writer) })
  } catch (err) {
    return (err as Error).message
  }
}

/** A resolution, with the writer's own type when it names fields `model` does not (see avro-unknown.ts). */
function withUnknown(model: RecordNode, writer: avro.Type, resolved: Resolved): Resolved {
  return namesUnknownFields(writer, model) ? { ...resolved, writer } : resolved
}

/**
 * avsc's rule for resolving a writer record (hasCompatibleName, namespaces ignored), checked on the
 * JSON before the writer is compiled: its message when the writer's record name is neither the
 * reader's nor one of its aliases, else null.
 */
function otherRecord(writer: unknown, reader: unknown): string | null {
  const w = writer as { type?: unknown; name?: unknown }
  if (w === null || typeof w !== 'object' || w.type !== 'record' || typeof w.name !== 'string') return null
  const r = reader as { name: string; aliases?: string[] }
  const name = unqualified(w.name)
  if ([r.name, ...(r.aliases ?? [])].some((n) => unqualified(n) === name)) return null
  return `no alias found for ${w.name}`
}

const unqualified = (name: string) => name.slice(name.lastIndexOf('.') + 1)

/** Fields of every record in a schema (JSON as parsed): what compiling it costs. */
function countFields(node: unknown): number {
  if (Array.isArray(node)) return node.reduce((n: number, x) => n + countFields(x), 0)
  if (node === null || typeof node !== 'object') return 0
  let n = Array.isArray((node as { fields?: unknown }).fields)
    ? (node as { fields: unknown[] }).fields.length
    : 0
  for (const value of Object.values(node)) n += countFields(value)
  return n
}
