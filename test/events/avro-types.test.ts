import avro from 'avsc'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { avroType } from '../../events/avro-types.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { generateEvents } from '../../generator/funnel.js'

const SCHEMA: avro.Schema = {
  type: 'record',
  name: 'T',
  fields: [
    { name: 's', type: ['null', 'string'] },
    { name: 'l', type: ['long', 'null'] },
    { name: 'd', type: ['null', 'double'] },
    { name: 'b', type: ['null', 'boolean'] },
    { name: 'e', type: ['null', { type: 'enum', name: 'E', symbols: ['A', 'B'] }] },
    { name: 'a', type: ['null', { type: 'array', items: 'int' }] },
    { name: 'm', type: ['null', { type: 'map', values: 'string' }] },
    { name: 'y', type: ['null', 'bytes'] },
    { name: 'r', type: ['null', { type: 'record', name: 'R', fields: [{ name: 'x', type: 'int' }] }] },
    { name: 'u', type: ['null', 'string', 'long'] },
  ],
}

const plain = avro.Type.forSchema(SCHEMA)
const generated = avroType(SCHEMA)

const value = fc.record({
  s: fc.option(fc.string()),
  l: fc.option(fc.integer()),
  d: fc.option(fc.double({ noNaN: true })),
  b: fc.option(fc.boolean()),
  e: fc.option(fc.constantFrom('A', 'B')),
  a: fc.option(fc.array(fc.integer())),
  m: fc.option(fc.dictionary(fc.string(), fc.string())),
  y: fc.option(fc.uint8Array().map((u) => Buffer.from(u))),
  r: fc.option(fc.record({ x: fc.integer() })),
  u: fc.option(fc.oneof(fc.string(), fc.integer())),
})

describe('avroType: optional fields read and written by generated code', () => {
  it('writes the bytes avsc writes and reads back the values avsc reads', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = plain.toBuffer(v)
        expect(generated.toBuffer(v).equals(bytes)).toBe(true)
        expect(generated.fromBuffer(bytes)).toEqual(plain.fromBuffer(bytes))
      }),
    )
  })

  it('refuses a value of the wrong kind with avsc’s own error', () => {
    const bad = { ...(plain.fromBuffer(plain.toBuffer({ ...nulls() })) as object), s: 12 }
    expect(() => plain.toBuffer(bad)).toThrow()
    expect(() => generated.toBuffer(bad)).toThrow(getError(() => plain.toBuffer(bad)))
    expect(() => generated.toBuffer({ ...nulls(), r: 'x' })).toThrow(/invalid/)
    expect(() => generated.toBuffer({ ...nulls(), s: undefined })).toThrow(/invalid/)
  })

  it('refuses a union index outside the union', () => {
    const bytes = Buffer.from(plain.toBuffer(nulls()))
    bytes[0] = 4 // zig-zag 2: no third branch in ["null", "string"]
    expect(() => generated.fromBuffer(bytes)).toThrow(/invalid union index: 2/)
  })

  it('encodes every generated event of every type as plain avsc does', () => {
    for (const [type, schema] of Object.entries(EVENT_SCHEMAS)) {
      const reference = avro.Type.forSchema(schema.json)
      for (const event of generateEvents(type as keyof typeof EVENT_SCHEMAS, 50, 21)) {
        const bytes = reference.toBuffer(event)
        expect(schema.type.toBuffer(event).equals(bytes)).toBe(true)
        expect(JSON.stringify(schema.type.fromBuffer(bytes))).toBe(
          JSON.stringify(reference.fromBuffer(bytes)),
        )
      }
    }
  })
})

function nulls(): Record<string, null> {
  return { s: null, l: null, d: null, b: null, e: null, a: null, m: null, y: null, r: null, u: null }
}

function getError(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return (err as Error).message
  }
  return ''
}
