import { gzipSync } from 'node:zlib'
import { compressFrameSync } from 'lz4-napi'
import { describe, expect, it } from 'vitest'
import { CONTENT_ENCODINGS, decompressBody, parseContentEncoding } from '../../decoders/content-encoding.js'
import type { Encoding } from '../../decoders/result.js'
import { EVENT_TYPES } from '../../events/catalog.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { decode, expectError, ok } from '../support/decode.js'
import { stamped } from '../support/events.js'

const ENCODINGS: Encoding[] = ['json', 'ndjson', 'csv', 'avro']
const compress = { gzip: (b: Buffer) => gzipSync(b), lz4: (b: Buffer) => compressFrameSync(b) } as const

describe('Content-Encoding', () => {
  for (const ce of ['gzip', 'lz4'] as const) {
    it(`${ce} bodies of every type and encoding round-trip through decodeBody`, () => {
      for (const type of EVENT_TYPES) {
        const events = generateEvents(type, 40, 21)
        for (const encoding of ENCODINGS) {
          const body = compress[ce](encodeEvents(type, events, encoding))
          const r = ok(decode(type, encoding, body, { contentEncoding: ce }))
          expect(r.rejects).toEqual([])
          expect(r.events).toEqual(events.map(stamped))
        }
      }
    })

    it(`refuses a ${ce} bomb over maxBytes with BODY_TOO_LARGE`, () => {
      const bomb = compress[ce](Buffer.alloc(32 << 20, 0x20))
      expect(bomb.length).toBeLessThan(200_000)
      expectError(
        decode('impression', 'json', bomb, { contentEncoding: ce, maxBytes: 1 << 20 }),
        'BODY_TOO_LARGE',
      )
    })

    it(`accepts a ${ce} body that inflates to exactly maxBytes`, () => {
      const plain = encodeEvents('click', generateEvents('click', 10, 1), 'ndjson')
      const r = decode('click', 'ndjson', compress[ce](plain), {
        contentEncoding: ce,
        maxBytes: plain.length,
      })
      expect(ok(r).events).toHaveLength(10)
      const over = decode('click', 'ndjson', compress[ce](plain), {
        contentEncoding: ce,
        maxBytes: plain.length - 1,
      })
      expectError(over, 'BODY_TOO_LARGE')
    })

    it(`refuses a corrupt or truncated ${ce} body as MALFORMED_BODY`, () => {
      const body = compress[ce](encodeEvents('click', generateEvents('click', 10, 1), 'csv'))
      const truncated = body.subarray(0, body.length - 7)
      expectError(decode('click', 'csv', truncated, { contentEncoding: ce }), 'MALFORMED_BODY')
      expectError(
        decode('click', 'csv', Buffer.from('plainly not compressed'), { contentEncoding: ce }),
        'MALFORMED_BODY',
      )
    })
  }

  it('passes identity bodies through untouched, whatever their size', () => {
    const body = Buffer.from('abc')
    expect(decompressBody(body, 'identity', 1)).toBe(body)
  })

  it('refuses a gzip body whose checksum does not match', () => {
    const body = Buffer.from(gzipSync(Buffer.from('{"a":1}')))
    body[body.length - 5]! ^= 0x01 // CRC32 of the trailer
    expect(decompressBody(body, 'gzip', 1000)).toMatchObject({ code: 'MALFORMED_BODY' })
  })

  it.each([
    [undefined, 'identity'],
    ['', 'identity'],
    ['identity', 'identity'],
    ['gzip', 'gzip'],
    [' GZip ', 'gzip'],
    ['x-gzip', 'gzip'],
    ['lz4', 'lz4'],
    ['LZ4', 'lz4'],
    ['br', undefined],
    ['deflate', undefined],
    ['zstd', undefined],
    ['gzip, lz4', undefined],
    ['gzip;q=1', undefined],
  ] as const)('parseContentEncoding(%j) is %j', (header, expected) => {
    expect(parseContentEncoding(header)).toBe(expected)
  })

  it('lists exactly the encodings it parses', () => {
    expect([...CONTENT_ENCODINGS].sort()).toEqual(['gzip', 'identity', 'lz4'])
    for (const e of CONTENT_ENCODINGS) expect(parseContentEncoding(e)).toBe(e)
  })
})
