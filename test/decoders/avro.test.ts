import { deflateRawSync } from 'node:zlib'
import avro from 'avsc'
import { describe, expect, it } from 'vitest'
import { readBlock, readHeader, writeContainer } from '../../decoders/avro-container.js'
import { EVENT_TYPES } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import type { Event } from '../../generator/events.js'
import { generateEvents } from '../../generator/funnel.js'
import { block, container, containerHeader, records } from '../support/avro.js'
import { decode, expectError, ok } from '../support/decode.js'
import { stamped } from '../support/events.js'

interface Field {
  name: string
  type: unknown
  default?: unknown
}
const IMPRESSION = EVENT_SCHEMAS.impression.json as unknown as { fields: Field[] } & Record<string, unknown>

function impressionSchema(fields: Field[]): Record<string, unknown> {
  return { ...IMPRESSION, fields }
}

const impressions = (n: number, seed = 1) => generateEvents('impression', n, seed)
const avroImpressions = (body: Buffer, maxBytes?: number, maxEvents?: number) =>
  decode('impression', 'avro', body, {
    ...(maxBytes === undefined ? {} : { maxBytes }),
    ...(maxEvents === undefined ? {} : { maxEvents }),
  })

function without(e: Event, names: string[]): Event {
  const out = { ...e }
  for (const n of names) delete out[n]
  return out
}

describe('Avro object container bodies', () => {
  for (const codec of ['null', 'deflate'] as const) {
    for (const type of EVENT_TYPES) {
      it(`${type}, codec ${codec}, several blocks`, () => {
        const events = generateEvents(type, 23, 5)
        const body = writeContainer(EVENT_SCHEMAS[type].type, events, { codec, blockSize: 7 })
        const r = ok(decode(type, 'avro', body))
        expect(r.rejects).toEqual([])
        expect(r.events).toEqual(events.map(stamped))
      })
    }
  }

  it('reads data from an older writer that lacks fields adgate gives defaults', () => {
    const dropped = ['creative_id', 'currency', 'device_type', 'ingest_time', 'source']
    const writer = avro.Type.forSchema(
      impressionSchema(IMPRESSION.fields.filter((f) => !dropped.includes(f.name))) as avro.Schema,
    )
    const events = impressions(5)
    const body = writeContainer(
      writer,
      events.map((e) => without(e, dropped)),
    )
    const r = ok(avroImpressions(body))
    expect(r.events).toEqual(
      events.map((e) => stamped({ ...e, creative_id: null, currency: 'USD', device_type: 'UNKNOWN' })),
    )
  })

  it('reads data from a newer writer with extra fields (scalars, arrays, maps, records), keeping them in _unknown', () => {
    const extra: Field[] = [
      { name: 'viewability', type: 'double', default: 0 },
      { name: 'tags', type: { type: 'array', items: 'string' }, default: [] },
      { name: 'attrs', type: { type: 'map', values: 'long' }, default: {} },
      {
        name: 'geo',
        type: ['null', { type: 'record', name: 'NewGeo', fields: [{ name: 'lat', type: 'double' }] }],
        default: null,
      },
    ]
    const fields = [...IMPRESSION.fields.slice(0, 6), ...extra, ...IMPRESSION.fields.slice(6)]
    const writer = avro.Type.forSchema(impressionSchema(fields) as avro.Schema)
    const events = impressions(6)
    const body = writeContainer(
      writer,
      events.map((e, i) => ({ ...e, viewability: 0.5, tags: ['a', 'b'], attrs: { x: i }, geo: { lat: 1 } })),
    )
    const r = ok(avroImpressions(body))
    expect(r.events).toEqual(
      events.map((e, i) =>
        stamped({
          ...e,
          _unknown: JSON.stringify({ viewability: 0.5, tags: ['a', 'b'], attrs: { x: i }, geo: { lat: 1 } }),
        }),
      ),
    )
  })

  it('reads a writer that wrote a promotable type (int where adgate has long)', () => {
    const fields = IMPRESSION.fields.map((f) => (f.name === 'cost_micros' ? { ...f, type: 'int' } : f))
    const writer = avro.Type.forSchema(impressionSchema(fields) as avro.Schema)
    const events = impressions(3)
    expect(ok(avroImpressions(writeContainer(writer, events))).events).toEqual(events.map(stamped))
  })

  it.each([
    [
      'a required field without a default is missing',
      (fs: Field[]) => fs.filter((f) => f.name !== 'cost_micros'),
    ],
    [
      'a field has a type that cannot be promoted',
      (fs: Field[]) => fs.map((f) => (f.name === 'event_id' ? { ...f, type: 'int' } : f)),
    ],
  ])('refuses an incompatible writer schema: %s', (_, change) => {
    const schema = impressionSchema(change(IMPRESSION.fields))
    const writer = avro.Type.forSchema(schema as avro.Schema)
    const value = writer.random()
    const body = container(schema, [records(writer, [value])])
    expectError(avroImpressions(body), 'SCHEMA_MISMATCH')
  })

  it("reads a writer enum symbol adgate does not know as the enum's default (Avro 1.9 resolution)", () => {
    const symbols = ['UNKNOWN', 'DESKTOP', 'MOBILE', 'TABLET', 'CTV', 'OTHER', 'WATCH']
    const fields = IMPRESSION.fields.map((f) =>
      f.name === 'device_type' ? { ...f, type: { type: 'enum', name: 'DeviceType', symbols } } : f,
    )
    const writer = avro.Type.forSchema(impressionSchema(fields) as avro.Schema)
    const events = impressions(2)
    const body = writeContainer(writer, [{ ...events[0]!, device_type: 'WATCH' }, events[1]])
    expect(ok(avroImpressions(body)).events).toEqual([
      stamped({ ...events[0]!, device_type: 'UNKNOWN' }),
      stamped(events[1]!),
    ])
  })

  it('refuses a writer schema for another record, and one that is not a schema', () => {
    const other = { type: 'record', name: 'Other', fields: [{ name: 'x', type: 'int' }] }
    expectError(avroImpressions(container(other, [{ count: 1, data: Buffer.from([2]) }])), 'SCHEMA_MISMATCH')
    expectError(avroImpressions(container('{"type": "record",', [])), 'SCHEMA_MISMATCH')
    expectError(avroImpressions(container('"nosuchtype"', [])), 'SCHEMA_MISMATCH')
  })

  it('refuses every truncation except at a block boundary, where it reads the complete blocks', () => {
    const events = generateEvents('click', 9, 3)
    const body = writeContainer(EVENT_SCHEMAS.click.type, events, { blockSize: 4 })
    const header = readHeader(body)
    if ('error' in header) throw new Error(header.error)
    const boundaries = new Map<number, number>([[header.end, 0]])
    let records = 0
    for (let pos = header.end; pos < body.length; ) {
      const b = readBlock(body, pos, header, 1 << 20)
      if ('error' in b) throw new Error(b.error)
      records += b.count
      boundaries.set(b.end, records)
      pos = b.end
    }
    expect([...boundaries.values()]).toEqual([0, 4, 8, 9])
    for (let len = 0; len < body.length; len++) {
      const r = avroImpressionsOf('click', body.subarray(0, len))
      const complete = boundaries.get(len)
      if (complete === undefined) expectError(r, 'MALFORMED_BODY')
      else if (complete === 0) expectError(r, 'EMPTY_BODY')
      else expect(ok(r).events).toEqual(events.slice(0, complete).map(stamped))
    }
  })

  it('refuses a bad magic number', () => {
    const body = writeContainer(EVENT_SCHEMAS.impression.type, impressions(2))
    for (const [at, byte] of [
      [0, 0x6f],
      [3, 0x02],
    ] as const) {
      const bad = Buffer.from(body)
      bad[at] = byte
      expectError(avroImpressions(bad), 'MALFORMED_BODY')
    }
    expectError(avroImpressions(Buffer.from('{"event_id": "x"}')), 'MALFORMED_BODY')
  })

  it('refuses a sync marker that differs from the header', () => {
    const body = writeContainer(EVENT_SCHEMAS.impression.type, impressions(4), { blockSize: 2 })
    const bad = Buffer.from(body)
    bad[bad.length - 1]! ^= 0xff
    const r = avroImpressions(bad)
    expectError(r, 'MALFORMED_BODY')
    expect(!r.ok && r.error.detail).toMatch(/sync/)
  })

  it.each(['snappy', 'zstandard', 'bzip2', 'xz'])('refuses the unsupported codec %s', (codec) => {
    const type = EVENT_SCHEMAS.impression.type
    const body = container(type.schema(), [records(type, impressions(1))], codec)
    expectError(avroImpressions(body), 'UNSUPPORTED_AVRO_CODEC')
  })

  it('treats a header without a codec as the null codec, and refuses one without a schema', () => {
    const type = EVENT_SCHEMAS.impression.type
    const events = impressions(2)
    expect(ok(avroImpressions(container(type.schema(), [records(type, events)], ''))).events).toEqual(
      events.map(stamped),
    )
    const noSchema = Buffer.from(containerHeader(type.schema()))
    noSchema.write('avro.schemX', noSchema.indexOf('avro.schema'), 'latin1')
    expectError(avroImpressions(noSchema), 'MALFORMED_BODY')
  })

  it('rejects records that break the bounds one by one, with their Avro bytes as raw', () => {
    const type = EVENT_SCHEMAS.impression.type
    const events = impressions(6)
    events[1] = { ...events[1]!, cost_micros: -5 }
    events[4] = { ...events[4]!, event_id: '' }
    events[5] = { ...events[5]!, country: 'GBR' }
    const r = ok(avroImpressions(writeContainer(type, events, { blockSize: 2, codec: 'deflate' })))
    expect(r.events).toEqual([0, 2, 3].map((i) => stamped(events[i]!)))
    expect(r.rejects.map((x) => [x.index, x.field, x.reason])).toEqual([
      [1, 'cost_micros', 'must be ≥ 0, got -5'],
      [4, 'event_id', 'must not be empty'],
      [5, 'country', 'must be at most 2 characters, got 3'],
    ])
    for (const x of r.rejects) {
      expect(x.raw.equals(type.toBuffer(events[x.index]))).toBe(true)
      expect(type.fromBuffer(x.raw)).toEqual(events[x.index])
    }
  })

  it('refuses a deflate bomb with BODY_TOO_LARGE instead of inflating it', () => {
    const type = EVENT_SCHEMAS.click.type
    const bomb = deflateRawSync(Buffer.alloc(64 << 20))
    expect(bomb.length).toBeLessThan(100_000)
    const body = container(type.schema(), [{ count: 1, data: bomb }], 'deflate')
    expectError(avroImpressionsOf('click', body, 1 << 20), 'BODY_TOO_LARGE')
  })

  it('counts inflated bytes across blocks against the limit', () => {
    const type = EVENT_SCHEMAS.click.type
    const events = generateEvents('click', 400, 9).map((e) => ({
      ...e,
      landing_url: `https://x.example/${'p'.repeat(2000)}`,
    }))
    const body = writeContainer(type, events, { codec: 'deflate', blockSize: 200 })
    expect(body.length).toBeLessThan(100_000)
    expectError(avroImpressionsOf('click', body, 600_000), 'BODY_TOO_LARGE')
    expect(ok(avroImpressionsOf('click', body, 1_000_000)).events).toHaveLength(400)
  })

  it('refuses more records than maxEvents, counting across blocks', () => {
    const body = writeContainer(EVENT_SCHEMAS.impression.type, impressions(10), { blockSize: 4 })
    expectError(avroImpressions(body, undefined, 9), 'TOO_MANY_EVENTS')
    expect(ok(avroImpressions(body, undefined, 10)).events).toHaveLength(10)
  })

  it('refuses a container with no records as EMPTY_BODY', () => {
    const type = EVENT_SCHEMAS.impression.type
    expectError(avroImpressions(writeContainer(type, [])), 'EMPTY_BODY')
    expectError(
      avroImpressions(container(type.schema(), [{ count: 0, data: Buffer.alloc(0) }])),
      'EMPTY_BODY',
    )
  })

  it('refuses a block with bytes beyond its records, or fewer bytes than its count needs', () => {
    const type = EVENT_SCHEMAS.impression.type
    const one = records(type, impressions(1))
    const extra = { count: 1, data: Buffer.concat([one.data, Buffer.from([0])]) }
    expectError(avroImpressions(container(type.schema(), [extra])), 'MALFORMED_BODY')
    const short = { count: 2, data: one.data }
    expectError(avroImpressions(container(type.schema(), [short])), 'MALFORMED_BODY')
    const header = containerHeader(type.schema())
    const negative = Buffer.concat([header, block({ count: -1, data: one.data })])
    expectError(avroImpressions(negative), 'MALFORMED_BODY')
  })
})

function avroImpressionsOf(type: 'click', body: Buffer, maxBytes = 1 << 24) {
  return decode(type, 'avro', body, { maxBytes })
}
