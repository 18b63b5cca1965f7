import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import avro from 'avsc'
import { describe, expect, it } from 'vitest'
import { readBlock, readHeader, SUPPORTED_CODECS, writeContainer } from '../../decoders/avro-container.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { generateEvents } from '../../generator/funnel.js'
import { containerHeader, LONG, SYNC, varint } from '../support/avro.js'
import { decode, ok } from '../support/decode.js'
import { stamped } from '../support/events.js'

const type = EVENT_SCHEMAS.conversion.type

/** avsc's own container writer: an implementation independent of decoders/avro-container.ts. */
async function avscContainer(
  values: unknown[],
  codec: 'null' | 'deflate',
  blockSize: number,
): Promise<Buffer> {
  const encoder = new avro.streams.BlockEncoder(type as unknown as avro.Schema, { codec, blockSize })
  const out = buffer(encoder)
  for (const v of values) encoder.write(v)
  encoder.end()
  return out
}

async function avscRead(body: Buffer): Promise<unknown[]> {
  const decoder = Readable.from([body]).pipe(new avro.streams.BlockDecoder())
  const values: unknown[] = []
  for await (const v of decoder) values.push(v)
  return values
}

describe('Avro object container files', () => {
  for (const codec of ['null', 'deflate'] as const) {
    it(`decodes files written by avsc's BlockEncoder (codec ${codec})`, async () => {
      const events = generateEvents('conversion', 300, 4)
      const body = await avscContainer(events, codec, 1024)
      const r = ok(decode('conversion', 'avro', body))
      expect(r.events).toEqual(events.map(stamped))
    })

    it(`writes files avsc's BlockDecoder reads (codec ${codec})`, async () => {
      const events = generateEvents('conversion', 50, 4)
      const values = await avscRead(writeContainer(type, events, { codec, blockSize: 16 }))
      expect(values.map((v) => ({ ...(v as object) }))).toEqual(events)
    })
  }

  it('reads the header: schema, codec, sync marker and where the first block starts', () => {
    const head = containerHeader(type.schema(), 'deflate')
    const body = Buffer.concat([head, Buffer.from([0, 0])])
    const h = readHeader(body)
    if ('error' in h) throw new Error(h.error)
    expect(JSON.parse(h.writerSchema)).toEqual(type.schema())
    expect(h.codec).toBe('deflate')
    expect(h.sync.equals(SYNC)).toBe(true)
    expect(h.end).toBe(head.length)
    expect(SUPPORTED_CODECS).toEqual(['null', 'deflate'])
  })

  it('reports a truncated header, never reading past the buffer', () => {
    const head = containerHeader(type.schema())
    for (const len of [0, 3, 4, 5, 20, head.length - 17, head.length - 1]) {
      expect(readHeader(head.subarray(0, len))).toHaveProperty('error')
    }
  })

  it('reports block lengths that point past the end, and varints too long for a safe integer', () => {
    const head = containerHeader(type.schema())
    const h = readHeader(Buffer.concat([head, Buffer.alloc(1)]))
    if ('error' in h) throw new Error(h.error)
    const at = head.length
    const cases = [
      Buffer.concat([LONG.toBuffer(1), LONG.toBuffer(1000), Buffer.alloc(20)]),
      Buffer.concat([LONG.toBuffer(1), LONG.toBuffer(-3), Buffer.alloc(20)]),
      Buffer.concat([varint(2n ** 62n), LONG.toBuffer(0), SYNC]),
      Buffer.concat([LONG.toBuffer(1), varint(-(2n ** 62n)), SYNC]),
      Buffer.from([0xff, 0xff, 0xff]),
    ]
    for (const tail of cases) {
      const b = readBlock(Buffer.concat([head, tail]), at, h, 1 << 20)
      expect(b).toHaveProperty('error')
    }
  })

  it('reads an empty block and moves past its sync marker', () => {
    const head = containerHeader(type.schema())
    const h = readHeader(head)
    if ('error' in h) throw new Error(h.error)
    const body = Buffer.concat([head, LONG.toBuffer(0), LONG.toBuffer(0), SYNC])
    const b = readBlock(body, head.length, h, 10)
    expect(b).toEqual({ count: 0, data: Buffer.alloc(0), end: body.length })
  })
})
