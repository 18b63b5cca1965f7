import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EVENT_TYPES } from '../../events/catalog.js'
import { DLQ_SCHEMA, EVENT_SCHEMAS, SUBJECTS, schemaById } from '../../events/schemas.js'
import {
  decodeWire,
  encodeWire,
  frameWithStamps,
  WIRE_HEADER_BYTES,
  writeWireHeader,
} from '../../events/wire.js'
import { generateEvents } from '../../generator/funnel.js'

describe('Confluent wire format', () => {
  for (const type of EVENT_TYPES) {
    it(`${type} events round-trip under their schema id`, () => {
      const schema = EVENT_SCHEMAS[type]
      for (const event of generateEvents(type, 25, 8)) {
        const buf = encodeWire(schema, event)
        expect(buf[0]).toBe(0)
        expect(buf.readInt32BE(1)).toBe(schema.id)
        expect(buf.subarray(WIRE_HEADER_BYTES).equals(schema.type.toBuffer(event))).toBe(true)
        const { schema: read, value } = decodeWire(buf)
        expect(read).toBe(schema)
        expect({ ...(value as object) }).toEqual(event)
      }
    })
  }

  it('dead letters round-trip, raw bytes included', () => {
    const letter = {
      event_type: 'click',
      encoding: 'csv',
      index: 3,
      field: 'campaign_id',
      reason: 'must not be empty',
      errors: [{ field: 'campaign_id', reason: 'must not be empty' }],
      source: 'key-a',
      request_id: 'req-1',
      received_time: 1_795_000_000_000,
      raw: Buffer.from([0, 1, 2, 0xff]),
    }
    const { schema, value } = decodeWire(encodeWire(DLQ_SCHEMA, letter))
    expect(schema.subject).toBe('adgate.dlq-value')
    expect({ ...(value as object) }).toEqual(letter)
  })

  it('writes the header at an offset, big-endian', () => {
    const buf = Buffer.alloc(8, 0xaa)
    writeWireHeader(buf, 2, 0x01020304)
    expect([...buf]).toEqual([0xaa, 0xaa, 0, 1, 2, 3, 4, 0xaa])
  })

  it('refuses records that are not in the wire format', () => {
    const good = encodeWire(EVENT_SCHEMAS.click, generateEvents('click', 1, 1)[0])
    expect(() => decodeWire(good.subarray(0, 4))).toThrow(/not a Confluent wire-format record/)
    expect(() => decodeWire(Buffer.alloc(0))).toThrow(/not a Confluent wire-format record/)
    const magic = Buffer.from(good)
    magic[0] = 1
    expect(() => decodeWire(magic)).toThrow(/not a Confluent wire-format record/)
    const unknown = Buffer.from(good)
    unknown.writeInt32BE(424242, 1)
    expect(() => decodeWire(unknown)).toThrow(/unknown schema id 424242/)
  })

  it('refuses a value that does not match its schema, and a truncated one', () => {
    expect(() => encodeWire(EVENT_SCHEMAS.click, { event_id: 1 })).toThrow()
    const good = encodeWire(EVENT_SCHEMAS.click, generateEvents('click', 1, 1)[0])
    expect(() => decodeWire(good.subarray(0, good.length - 3))).toThrow()
  })

  it('finds every registered schema by id', () => {
    for (const versions of SUBJECTS.values()) for (const v of versions) expect(schemaById(v.id)).toBe(v)
    expect(schemaById(0)).toBeUndefined()
  })
})

describe('frameWithStamps (Avro bodies written with adgate schema)', () => {
  it('gives the same bytes as encoding the stamped event, for every event type', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...EVENT_TYPES),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 2 ** 52 }),
        fc.string({ maxLength: 64 }),
        (type, seed, ingestTime, source) => {
          const [event] = generateEvents(type, 1, seed)
          const schema = EVENT_SCHEMAS[type]
          const record = schema.type.toBuffer(event)
          const expected = encodeWire(schema, { ...event, ingest_time: ingestTime, source })
          expect(frameWithStamps(schema, record, ingestTime, source)).toEqual(expected)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('refuses a record cut short instead of reading past it', () => {
    const schema = EVENT_SCHEMAS.click
    const record = schema.type.toBuffer(generateEvents('click', 1, 3)[0])
    expect(() => frameWithStamps(schema, record.subarray(0, 5), 1, 's')).toThrow(RangeError)
  })
})
