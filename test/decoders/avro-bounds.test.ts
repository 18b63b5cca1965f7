import { readFileSync } from 'node:fs'
import avro from 'avsc'
import { describe, expect, it } from 'vitest'
import { boundedType } from '../../decoders/avro-bounds.js'
import { writeContainer } from '../../decoders/avro-container.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { generateEvents } from '../../generator/funnel.js'
import { nullsClaimingBytes } from '../../loadtest/noisy-client.js'
import { container, containerHeader, LONG, varint } from '../support/avro.js'
import { decode, expectError, ok } from '../support/decode.js'
import { stamped } from '../support/events.js'

// These inputs used to make avsc loop for hours. The outcome is what is asserted; the per-test
// timeout only turns a regression into a failure instead of a hung suite.
const HANG_GUARD = { timeout: 20_000 }

const BID = EVENT_SCHEMAS.bid.type
// The last array of a bid record: request.regs.gpp_sid, followed only by null unions (regs.ext,
// regs._unknown, request.ext, request._unknown, the envelope's _unknown).
const AFTER_GPP_SID = 5
const bid = () => {
  const b = generateEvents('bid', 1, 11)[0]!
  const request = { ...(b.request as object), regs: { gpp_sid: [] }, ext: null, _unknown: null }
  return { ...b, request, _unknown: null }
}

/** One bid record whose trailing gpp_sid array claims `count` items it does not have. */
function bidClaiming(count: bigint): Buffer {
  const rec = BID.toBuffer(bid())
  const end = rec.length - AFTER_GPP_SID - 1 // the empty array's count, 0
  const body = Buffer.concat([rec.subarray(0, end), varint(count), rec.subarray(end + 1)])
  return container(BID.schema(), [{ count: 1, data: body }])
}

describe('regression: a few bytes claiming a huge array or map made avsc loop for hours', () => {
  it('the claiming record is a valid bid when it claims no items', () => {
    expect(ok(decode('bid', 'avro', bidClaiming(0n))).rejects).toEqual([])
  })

  it('refuses a record whose array claims 2^40 items', HANG_GUARD, () => {
    expectError(decode('bid', 'avro', bidClaiming(2n ** 40n)), 'MALFORMED_BODY')
  })

  it('refuses a record whose array claims 2^26 items (7 s and 1 GB before the fix)', HANG_GUARD, () => {
    expectError(decode('bid', 'avro', bidClaiming(2n ** 26n)), 'MALFORMED_BODY')
  })

  it('refuses a container header whose metadata map claims 2^50 entries', HANG_GUARD, () => {
    const body = Buffer.concat([Buffer.from('Obj\x01', 'latin1'), varint(2n ** 50n)])
    expectError(decode('click', 'avro', body), 'MALFORMED_BODY')
  })

  it('refuses a block count beyond 2^53 instead of throwing', () => {
    const type = EVENT_SCHEMAS.click.type
    const body = Buffer.concat([containerHeader(type.schema()), varint(2n ** 60n), LONG.toBuffer(0)])
    expectError(decode('click', 'avro', body), 'MALFORMED_BODY')
  })

  it('bounds arrays and maps a newer writer adds, which the reader skips', HANG_GUARD, () => {
    const clickJson = EVENT_SCHEMAS.click.json as unknown as { fields: unknown[] }
    for (const extra of [
      { name: 'tags', type: { type: 'array', items: 'string' }, default: [] },
      { name: 'attrs', type: { type: 'map', values: 'string' }, default: {} },
    ]) {
      const schema = { ...clickJson, fields: [...clickJson.fields, extra] }
      const writer = avro.Type.forSchema(schema as avro.Schema)
      const [event] = generateEvents('click', 1, 2)
      const rec = writer.toBuffer({ ...event, tags: [], attrs: {} }) // ends with 0: the empty extra field
      for (const tail of [
        varint(2n ** 40n),
        Buffer.concat([varint(-1n), varint(-5n)]),
        Buffer.concat([varint(-1n), varint(2n ** 40n)]),
      ]) {
        const data = Buffer.concat([rec.subarray(0, rec.length - 1), tail, Buffer.alloc(4)])
        const body = container(schema, [{ count: 1, data }])
        expectError(decode('click', 'avro', body), 'MALFORMED_BODY')
      }
    }
  })

  // Issue 15, "every decoder step is linear": nulls take no bytes, so each block may claim every
  // byte left (here a string the writer puts after the array) — 2,000 blocks of 10,000 nulls in a
  // 16 KB body were 20 million reads, seconds of a decode thread (or of the event loop, inline).
  it(
    'bounds the items of all blocks together: a writer array of nulls cannot claim the same bytes again and again',
    HANG_GUARD,
    () => {
      // As many nulls as the record has bytes, in a few blocks: still read (and the field skipped).
      const fair = nullsClaimingBytes('click', { blocks: 4, items: 2_000, padBytes: 10_000 })
      expect(ok(decode('click', 'avro', fair)).events).toHaveLength(1)
      const body = nullsClaimingBytes('click', { blocks: 2_000, items: 10_000, padBytes: 10_000 })
      const result = decode('click', 'avro', body)
      expectError(result, 'MALFORMED_BODY')
      expect(result.ok || result.error.detail).toMatch(/claim more items than the data has bytes/)
    },
  )

  // Stop 24's CI hung here (test/decoders/fuzz.test.ts, ADGATE_PROPERTY_SEED=1137433215 replays
  // it): an LZ4 match offset the fuzzer changed left a negative length in the header's map, and avsc
  // moves its position back by a negative length, so the map's reader went round its entries for
  // ever. A hang never yields, so vitest's timeout cannot fail these: the hang watchdog would.
  describe('a negative string or bytes length is refused, never followed backwards', () => {
    const text = (s: string) => Buffer.concat([LONG.toBuffer(s.length), Buffer.from(s)])
    it('in a container header: the map entry whose value length points back at the map count', () => {
      // magic, a map of 1 entry (at byte 4), key "k", a value length of -4: back to byte 4.
      const body = Buffer.concat([Buffer.from('Obj\x01', 'latin1'), varint(1n), text('k'), varint(-4n)])
      const result = decode('click', 'avro', Buffer.concat([body, Buffer.alloc(16)]))
      expectError(result, 'MALFORMED_BODY')
      expect(result.ok || result.error.detail).toMatch(/negative length \(-4\) at byte 7/)
    })

    it('the fuzzed body itself (test/fixtures/avro/fuzzed-header-negative-length.avro)', () => {
      const body = readFileSync(
        new URL('../fixtures/avro/fuzzed-header-negative-length.avro', import.meta.url),
      )
      const result = decode('click', 'avro', body)
      expectError(result, 'MALFORMED_BODY')
      expect(result.ok || result.error.detail).toMatch(/negative length \(-61\) at byte 559/)
    })

    it('in a record: read strings and bytes, skipped strings, bytes and map keys', () => {
      const schema: avro.Schema = {
        type: 'record',
        name: 'R',
        fields: [
          { name: 's', type: 'string' },
          { name: 'b', type: 'bytes' },
          { name: 'm', type: { type: 'map', values: 'int' } },
        ],
      }
      const valid = Buffer.concat([
        text('ab'),
        text('cd'),
        varint(1n),
        text('k'),
        LONG.toBuffer(1),
        varint(0n),
      ])
      const back = varint(-3n)
      const corrupt = {
        string: Buffer.concat([back, text('cd'), varint(0n)]),
        bytes: Buffer.concat([text('ab'), back, varint(0n)]),
        'map key': Buffer.concat([text('ab'), text('cd'), varint(1n), back, LONG.toBuffer(1), varint(0n)]),
      }
      const read = boundedType(schema)
      // A reader that knows none of the fields skips them all.
      const skipping = boundedType({ type: 'record', name: 'R', fields: [] })
      const resolver = skipping.createResolver(boundedType(schema))
      expect(read.decode(valid, 0).offset).toBe(valid.length)
      expect(skipping.decode(valid, 0, resolver).offset).toBe(valid.length)
      for (const [what, bytes] of Object.entries(corrupt)) {
        expect(() => read.decode(bytes, 0), `read ${what}`).toThrow(/negative length/)
        expect(() => skipping.decode(bytes, 0, resolver), `skipped ${what}`).toThrow(/negative length/)
      }
    })
  })

  it('still reads blocked arrays and maps (negative counts with byte sizes), read and skipped', () => {
    const schema: avro.Schema = {
      type: 'record',
      name: 'R',
      fields: [
        { name: 'a', type: { type: 'array', items: 'string' } },
        { name: 'm', type: { type: 'map', values: 'int' } },
      ],
    }
    // a: one block of -2 items (6 bytes), one of 1 item, then the end; m: a block of -1 entry (3 bytes).
    const str = (s: string) => Buffer.concat([LONG.toBuffer(s.length), Buffer.from(s)])
    const bytes = Buffer.concat([
      varint(-2n),
      varint(6n),
      str('ab'),
      str('cd'),
      varint(1n),
      str('e'),
      varint(0n),
      varint(-1n),
      varint(3n),
      str('k'),
      LONG.toBuffer(21),
      varint(0n),
    ])
    const plain = avro.Type.forSchema(schema)
    const bounded = boundedType(schema)
    expect(plain.fromBuffer(bytes)).toEqual({ a: ['ab', 'cd', 'e'], m: { k: 21 } })
    expect({ ...(bounded.fromBuffer(bytes) as object) }).toEqual({ a: ['ab', 'cd', 'e'], m: { k: 21 } })
    // Skipped: a reader that knows neither field.
    const reader = boundedType({ type: 'record', name: 'R', fields: [] })
    const resolver = reader.createResolver(boundedType(schema))
    expect(reader.decode(bytes, 0, resolver).offset).toBe(bytes.length)
  })

  it('decodes the generated bids exactly as before', () => {
    const events = generateEvents('bid', 200, 3)
    const r = ok(decode('bid', 'avro', writeContainer(BID, events, { blockSize: 64 })))
    expect(r.events).toEqual(events.map(stamped))
  })
})

describe('strings are checked to be UTF-8 as they are read', () => {
  const STRING = boundedType('string')
  const encoded = (bytes: number[]) => Buffer.concat([varint(BigInt(bytes.length)), Buffer.from(bytes)])

  // Each decodes to U+FFFD, the sign the bytes are then checked by: none may pass as text.
  for (const [what, bytes] of [
    ['a lone continuation byte', [0x61, 0x80]],
    ['an overlong NUL', [0xc0, 0x80]],
    ['an overlong slash', [0xe0, 0x80, 0xaf]],
    ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['0xff', [0xff]],
  ] as const) {
    it(`refuses ${what}`, () => {
      expect(() => STRING.fromBuffer(encoded([...bytes]))).toThrow(/not valid UTF-8/)
    })
  }

  it('reads U+FFFD itself, written as UTF-8, as text', () => {
    expect(STRING.fromBuffer(encoded([0x61, 0xef, 0xbf, 0xbd, 0xe2, 0x82, 0xac]))).toBe('a\uFFFD€')
  })
})
