import { gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { compressFrameSync } from 'lz4-napi'
import { describe, expect, it } from 'vitest'
import { writeContainer } from '../../decoders/avro-container.js'
import { type ContentEncoding, decompressBody } from '../../decoders/content-encoding.js'
import { decodeBody } from '../../decoders/decode.js'
import type { DecodeResult, Encoding } from '../../decoders/result.js'
import { EVENT_TYPES, type EventType } from '../../events/catalog.js'
import type { ErrorCode } from '../../events/errors.js'
import { ERRORS } from '../../events/errors.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents, generateFunnel } from '../../generator/funnel.js'
import { INGEST_TIME, options, SOURCE, stamped } from '../support/events.js'
import { runs } from '../support/runs.js'
import { samePaths } from '../support/transcode.js'

/**
 * Whatever bytes arrive, decodeBody returns (never throws) and its result is well formed: a known
 * error code, or schema-valid events with rejections at distinct in-range indices. Speed is not
 * judged here (a wall-clock limit failed on a loaded machine): the linear-time tests in
 * hostile-text.test.ts and the decoder bench do that; a hang still fails on the test timeout.
 */
const ENCODINGS: Encoding[] = ['json', 'ndjson', 'csv', 'avro']
const CONTENT_ENCODINGS: ContentEncoding[] = ['identity', 'gzip', 'lz4']
const MAX_EVENTS = 40
const MAX_BYTES = 256 * 1024

/** The codes a decoder may answer with; the others belong to the gateway. */
const DECODER_CODES: ErrorCode[] = [
  'MALFORMED_BODY',
  'INVALID_UTF8',
  'EMPTY_BODY',
  'MISSING_HEADER_ROW',
  'SCHEMA_MISMATCH',
  'BODY_TOO_LARGE',
  'TOO_MANY_EVENTS',
  'UNSUPPORTED_AVRO_CODEC',
]

function compress(body: Buffer, ce: ContentEncoding): Buffer {
  if (ce === 'gzip') return gzipSync(body)
  if (ce === 'lz4') return compressFrameSync(body)
  return body
}

function run(
  type: EventType,
  encoding: Encoding,
  contentEncoding: ContentEncoding,
  body: Buffer,
): DecodeResult {
  const result = decodeBody(body, {
    type,
    encoding,
    contentEncoding,
    maxBytes: MAX_BYTES,
    maxEvents: MAX_EVENTS,
    ingestTime: INGEST_TIME,
    source: SOURCE,
  })
  // JSON bodies: the native transcoder must agree with the JS path on every fuzzed body too.
  if (encoding === 'json' || encoding === 'ndjson') {
    const plain = decompressBody(body, contentEncoding, MAX_BYTES)
    if (Buffer.isBuffer(plain) && !samePaths(plain, encoding === 'ndjson', options(type, MAX_EVENTS)))
      throw new Error(`native and JS transcoders disagree on ${JSON.stringify(plain.toString('latin1'))}`)
  }
  return result
}

/** Throws (failing the property) when the result is not well formed. */
function checkWellFormed(type: EventType, result: DecodeResult): void {
  if (!result.ok) {
    if (!(result.error.code in ERRORS)) throw new Error(`unknown error code ${result.error.code}`)
    if (!DECODER_CODES.includes(result.error.code)) throw new Error(`a decoder answered ${result.error.code}`)
    if (typeof result.error.detail !== 'string' || result.error.detail === '') throw new Error('no detail')
    return
  }
  const total = result.events.length + result.rejects.length
  if (total === 0) throw new Error('ok with neither events nor rejects')
  if (total > MAX_EVENTS) throw new Error(`${total} events past maxEvents`)
  const schema = EVENT_SCHEMAS[type].type
  for (const e of result.events) {
    if (!schema.isValid(e)) throw new Error(`invalid event accepted: ${JSON.stringify(e)}`)
    const s = e as { ingest_time: unknown; source: unknown }
    if (s.ingest_time !== INGEST_TIME || s.source !== SOURCE) throw new Error('event not stamped')
  }
  let previous = -1
  for (const r of result.rejects) {
    if (!Number.isInteger(r.index) || r.index <= previous || r.index >= total)
      throw new Error(`reject index ${r.index} after ${previous}, of ${total}`)
    previous = r.index
    if (r.field !== null && (typeof r.field !== 'string' || r.field === '')) throw new Error('bad field')
    if (typeof r.reason !== 'string' || r.reason === '') throw new Error('no reason')
    if (!Buffer.isBuffer(r.raw)) throw new Error('raw is not bytes')
  }
}

// Valid bodies to mutate: a few events of each type in each encoding (Avro with both codecs).
const SEEDS = new Map<string, Buffer[]>()
for (const type of EVENT_TYPES) {
  const events = generateEvents(type, 3, 17)
  for (const encoding of ENCODINGS) {
    const bodies = [encodeEvents(type, events, encoding)]
    if (encoding === 'avro')
      bodies.push(writeContainer(EVENT_SCHEMAS[type].type, events, { codec: 'deflate', blockSize: 2 }))
    SEEDS.set(`${type}/${encoding}`, bodies)
  }
}

// Bytes that steer parsers into their corners: quotes, separators, brackets, UTF-8 lead and
// continuation bytes, varint continuation bytes.
const interesting = fc.constantFrom(
  0x22,
  0x2c,
  0x0a,
  0x0d,
  0x7b,
  0x5b,
  0x5d,
  0x7d,
  0x3a,
  0x5c,
  0x00,
  0x80,
  0xc3,
  0xef,
  0xff,
  0x7f,
  0x01,
)

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'duplicate'; at: number; len: number; to: number }
  | { kind: 'set'; at: number; byte: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.array(fc.oneof(interesting, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 24 }) }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fc.nat(),
    len: fc.integer({ min: 1, max: 200 }),
    to: fc.nat(),
  }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: interesting }),
)

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let buf = Buffer.from(input)
  for (const m of mutations) {
    if (buf.length === 0) break
    const at = m.at % buf.length
    switch (m.kind) {
      case 'flip':
        buf[at]! ^= 1 << m.bit
        break
      case 'set':
        buf[at] = m.byte
        break
      case 'truncate':
        buf = buf.subarray(0, at)
        break
      case 'insert':
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(m.bytes), buf.subarray(at)])
        break
      case 'delete':
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.len)])
        break
      case 'duplicate': {
        const range = buf.subarray(at, at + m.len)
        const to = m.to % (buf.length + 1)
        buf = Buffer.concat([buf.subarray(0, to), range, buf.subarray(to)])
        break
      }
    }
  }
  return buf
}

const typeArb = fc.constantFrom(...EVENT_TYPES)
const ceArb = fc.constantFrom(...CONTENT_ENCODINGS)

describe('decodeBody on hostile input', () => {
  for (const encoding of ENCODINGS) {
    it(`mutated ${encoding} bodies, every type and content encoding`, () => {
      fc.assert(
        fc.property(
          typeArb,
          ceArb,
          fc.nat(),
          fc.constantFrom(false, false, false, true),
          fc.oneof(
            fc.array(mutation, { minLength: 1, maxLength: 1 }),
            fc.array(mutation, { minLength: 2, maxLength: 5 }),
          ),
          (type, ce, pick, afterCompression, mutations) => {
            const seeds = SEEDS.get(`${type}/${encoding}`)!
            const seed = seeds[pick % seeds.length]!
            // Mutate the plain body (reaches the decoders) or the compressed one (the decompressors).
            const body = afterCompression
              ? mutate(compress(seed, ce), mutations)
              : compress(mutate(seed, mutations), ce)
            checkWellFormed(type, run(type, encoding, ce, body))
          },
        ),
        { numRuns: runs(2000) },
      )
    })
  }

  it('random bytes, raw and compressed, in every encoding', () => {
    fc.assert(
      fc.property(
        typeArb,
        fc.constantFrom(...ENCODINGS),
        ceArb,
        fc.boolean(),
        fc.uint8Array({ maxLength: 1024 }),
        (type, encoding, ce, compressed, bytes) => {
          const raw = Buffer.from(bytes)
          checkWellFormed(type, run(type, encoding, ce, compressed ? compress(raw, ce) : raw))
        },
      ),
      { numRuns: runs(1000) },
    )
  })

  it('random bytes after a valid Avro container header', () => {
    fc.assert(
      fc.property(typeArb, fc.uint8Array({ maxLength: 512 }), fc.boolean(), (type, bytes, deflate) => {
        const empty = writeContainer(EVENT_SCHEMAS[type].type, [], { codec: deflate ? 'deflate' : 'null' })
        checkWellFormed(type, run(type, 'avro', 'identity', Buffer.concat([empty, Buffer.from(bytes)])))
      }),
      { numRuns: runs(600) },
    )
  })

  it('random schema-valid Avro records: each accepted as written or rejected on its own', () => {
    fc.assert(
      fc.property(typeArb, fc.integer({ min: 1, max: 12 }), fc.boolean(), (type, n, deflate) => {
        const schema = EVENT_SCHEMAS[type].type
        // avsc's random values break adgate's bounds often (negative longs, empty or long strings).
        const records = Array.from({ length: n }, () => schema.random())
        const body = writeContainer(schema, records, { codec: deflate ? 'deflate' : 'null', blockSize: 5 })
        const result = run(type, 'avro', 'identity', body)
        checkWellFormed(type, result)
        if (!result.ok) throw new Error(`${result.error.code}: ${result.error.detail}`)
        expect(result.events.length + result.rejects.length).toBe(n)
        const rejected = new Set(result.rejects.map((r) => r.index))
        const accepted = records.filter((_, i) => !rejected.has(i))
        expect(result.events.map((e) => ({ ...e }))).toEqual(
          accepted.map((r) => stamped({ ...(r as object) } as Record<string, unknown>)),
        )
        for (const r of result.rejects) expect(schema.fromBuffer(r.raw)).toEqual(records[r.index])
      }),
      { numRuns: runs(400) },
    )
  })

  it('random JSON values and NDJSON lines', () => {
    fc.assert(
      fc.property(
        typeArb,
        fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 8 }),
        fc.boolean(),
        (type, values, nd) => {
          const text = nd ? values.map((v) => JSON.stringify(v)).join('\n') : JSON.stringify(values)
          checkWellFormed(type, run(type, nd ? 'ndjson' : 'json', 'identity', Buffer.from(text)))
        },
      ),
      { numRuns: runs(600) },
    )
  })

  it('random CSV text under a real header', () => {
    const cell = fc.oneof(
      fc.stringMatching(/^[a-z0-9 ,"\r\n:{}[\]-]{0,10}$/),
      fc.constantFrom('""', '"a,b"', '0', '-1', '[{"id":"1"}]'),
    )
    fc.assert(
      fc.property(typeArb, fc.array(fc.array(cell, { maxLength: 10 }), { maxLength: 8 }), (type, rows) => {
        const fields = (EVENT_SCHEMAS[type].json as { fields: { name: string }[] }).fields.map((f) => f.name)
        const text = [fields.join(','), ...rows.map((r) => r.join(','))].join('\n')
        checkWellFormed(type, run(type, 'csv', 'identity', Buffer.from(text)))
      }),
      { numRuns: runs(600) },
    )
  })
})

describe('generated funnels', () => {
  it('round-trip exactly, and invalid events are rejected exactly at invalidAt, in every encoding', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 10, max: 120 }),
        fc.record({
          duplicates: fc.double({ min: 0, max: 0.1, noNaN: true }),
          outOfOrder: fc.double({ min: 0, max: 0.1, noNaN: true }),
          late: fc.double({ min: 0, max: 0.1, noNaN: true }),
          invalid: fc.double({ min: 0, max: 0.25, noNaN: true }),
        }),
        ceArb,
        (seed, bids, knobs, ce) => {
          const funnel = generateFunnel({ seed, bids, ...knobs })
          for (const type of EVENT_TYPES) {
            const events = funnel[type]
            const bad = new Set(funnel.invalidAt[type])
            for (const encoding of ENCODINGS) {
              const body = compress(encodeEvents(type, events, encoding), ce)
              const result = decodeBody(body, {
                type,
                encoding,
                contentEncoding: ce,
                maxBytes: 1 << 24,
                maxEvents: 100_000,
                ingestTime: INGEST_TIME,
                source: SOURCE,
              })
              if (events.length === 0) {
                expect(result.ok ? 'ok' : result.error.code, `${type}/${encoding}`).toBe('EMPTY_BODY')
                continue
              }
              if (!result.ok)
                throw new Error(`${type}/${encoding}: ${result.error.code} ${result.error.detail}`)
              expect(
                result.rejects.map((r) => r.index),
                `${type}/${encoding}`,
              ).toEqual(funnel.invalidAt[type])
              expect(result.events, `${type}/${encoding}`).toEqual(
                events.filter((_, i) => !bad.has(i)).map(stamped),
              )
            }
          }
        },
      ),
      { numRuns: runs(50) },
    )
  })
})
