// Issue 15, defects 5 and 6: text is valid UTF-8 (no lone surrogates) on every encoding, checked the
// same way; a leading byte-order mark is ignored on every text encoding; the Avro writer-schema
// cache is bounded in bytes.
import { describe, expect, it } from 'vitest'
import {
  MAX_RESOLVER_CHARS,
  MAX_WRITER_SCHEMA_BYTES,
  maxWriterSchemaFields,
  resolverCacheSize,
} from '../../decoders/avro.js'
import { boundedType } from '../../decoders/avro-bounds.js'
import { threadCpuMs } from '../../decoders/cpu-clock.js'
import { MAX_JSON_DEPTH, nestedTooDeep } from '../../decoders/json.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { container, records } from '../support/avro.js'
import { decode, expectError, ok } from '../support/decode.js'

const IMPRESSION = EVENT_SCHEMAS.impression
const SCHEMA = IMPRESSION.json as unknown as { fields: { name: string }[] } & Record<string, unknown>
const event = (impressionId: string) =>
  `{"event_id":"e1","event_time":1760000000000,"impression_id":"${impressionId}","auction_id":"a","campaign_id":"c","cost_micros":1}`

describe('issue 15 defect 6: invalid text is refused the same way on every encoding', () => {
  it('Avro: a string with invalid UTF-8 bytes is 400 INVALID_UTF8, as in JSON and CSV', () => {
    const [e] = generateEvents('impression', 1, 3)
    const good = IMPRESSION.type.toBuffer({ ...e, campaign_id: 'cafe' })
    const at = good.indexOf(Buffer.from('cafe'))
    const bad = Buffer.from(good)
    bad[at + 3] = 0xff
    expectError(
      decode('impression', 'avro', container(IMPRESSION.json, [{ count: 1, data: bad }])),
      'INVALID_UTF8',
    )
    expect(
      ok(decode('impression', 'avro', container(IMPRESSION.json, [{ count: 1, data: good }]))).events,
    ).toHaveLength(1)
    const csv = encodeEvents('impression', [e!], 'csv')
    const badCsv = Buffer.concat([csv, Buffer.from([0xff])])
    expectError(decode('impression', 'csv', badCsv), 'INVALID_UTF8')
    expectError(decode('impression', 'json', Buffer.from([0x5b, 0xff, 0x5d])), 'INVALID_UTF8')
  })

  it('Avro from an older writer schema (through a resolver) is checked too', () => {
    const writer = { ...SCHEMA, fields: SCHEMA.fields.filter((f) => f.name !== 'currency') }
    const [e] = generateEvents('impression', 1, 4)
    const { currency: _, ...old } = { ...e, campaign_id: 'cafe' } as Record<string, unknown>
    const good = records(boundedWriter(writer), [old])
    const at = good.data.indexOf(Buffer.from('cafe'))
    good.data[at + 1] = 0xc3 // a lead byte followed by an ASCII byte
    expectError(decode('impression', 'avro', container(writer, [good])), 'INVALID_UTF8')
  })

  for (const lone of ['\\ud800', 'x\\udfffy', '\\udc00\\ud800']) {
    it(`JSON "${lone}" (a lone surrogate) is that event's rejection, on both JSON paths`, () => {
      // decode() also checks the native transcoder agrees with the JS decoder.
      const r = ok(decode('impression', 'json', `[${event(lone)},${event('ok')}]`))
      expect(r.events).toHaveLength(1)
      expect(r.rejects).toMatchObject([{ index: 0, field: 'impression_id' }])
    })
  }

  it('a surrogate pair (an emoji) is valid text', () => {
    expect(ok(decode('impression', 'ndjson', event('\\ud83d\\ude00'))).events).toHaveLength(1)
  })

  it('a leading byte-order mark is ignored on JSON, NDJSON and CSV alike', () => {
    const bom = Buffer.from([0xef, 0xbb, 0xbf])
    const events = generateEvents('impression', 3, 5)
    for (const encoding of ['json', 'ndjson', 'csv'] as const) {
      const body = Buffer.concat([bom, encodeEvents('impression', events, encoding)])
      expect(ok(decode('impression', encoding, body)).events, encoding).toHaveLength(3)
    }
  })
})

describe('issue 15 defect 5: the Avro writer-schema cache is bounded in bytes', () => {
  it('a writer schema over the limit is refused before it is parsed', () => {
    const huge = { ...SCHEMA, doc: 'x'.repeat(MAX_WRITER_SCHEMA_BYTES) }
    expectError(decode('impression', 'avro', container(huge, [])), 'SCHEMA_MISMATCH')
  })

  it('a writer schema with more fields than the limit is refused before it is compiled', () => {
    const max = maxWriterSchemaFields('impression')
    const fields = Array.from({ length: max + 1 }, (_, i) => ({
      name: `f${i}`,
      type: 'int',
    }))
    const r = decode('impression', 'avro', container({ type: 'record', name: 'Wide', fields }, []))
    expectError(r, 'SCHEMA_MISMATCH')
    expect(!r.ok && r.error.detail).toContain(`limit is ${max}`)
  })

  it('hundreds of distinct large schemas (valid or not) keep the cache within its byte bound', () => {
    const big = 'y'.repeat(MAX_WRITER_SCHEMA_BYTES - 2048)
    for (let i = 0; i < 300; i++) {
      const schema = i % 2 === 0 ? { ...SCHEMA, doc: `${i}${big}` } : `{"not a schema ${i}":"${big}"}`
      decode('impression', 'avro', container(schema, []))
      expect(resolverCacheSize().chars).toBeLessThanOrEqual(MAX_RESOLVER_CHARS)
    }
    expect(resolverCacheSize().entries).toBeGreaterThan(0)
  })
})

function boundedWriter(schema: unknown) {
  return boundedType(schema as Parameters<typeof boundedType>[0])
}

describe('issue 15 defect 4: CSV quoting is read in one linear pass, never by csv-parse', () => {
  it('a 100k-cell row of quoted cells with a stray quote is refused, naming the line', () => {
    const row = `${Array.from({ length: 100_000 }, () => '"x"').join(',')},a"b`
    const r = decode('click', 'csv', `event_id,click_id\n${row}\n`)
    expectError(r, 'MALFORMED_BODY')
    expect(!r.ok && r.error.detail).toBe(
      'invalid CSV: a quote inside an unquoted cell (quote the cell and double it: "a""b"), line 2',
    )
  })
})

describe('issue 15, the noisy neighbour: a body costs bounded decoder time', () => {
  const spent = { deadline: threadCpuMs() - 1 } // a budget already used up

  it('JSON and NDJSON: decoding stops at the budget with 400 BODY_TOO_COSTLY (both paths)', () => {
    expectError(
      decode('impression', 'json', `[${Array(100).fill('{}').join(',')}]`, spent),
      'BODY_TOO_COSTLY',
    )
    expectError(decode('impression', 'ndjson', '{}\n'.repeat(100), spent), 'BODY_TOO_COSTLY')
  })

  it('CSV and Avro: decoding stops at the budget with 400 BODY_TOO_COSTLY', () => {
    const events = generateEvents('impression', 100, 5)
    expectError(
      decode('impression', 'csv', encodeEvents('impression', events, 'csv'), spent),
      'BODY_TOO_COSTLY',
    )
    const body = container(IMPRESSION.type.schema(), [records(IMPRESSION.type, events)])
    expectError(decode('impression', 'avro', body, spent), 'BODY_TOO_COSTLY')
  })

  it('within the budget, and for fewer than 64 events, nothing changes', () => {
    const later = { deadline: threadCpuMs() + 60_000 }
    const events = generateEvents('impression', 100, 6)
    expect(
      ok(decode('impression', 'csv', encodeEvents('impression', events, 'csv'), later)).events,
    ).toHaveLength(100)
    expect(
      ok(decode('impression', 'csv', encodeEvents('impression', events.slice(0, 63), 'csv'), spent)).events,
    ).toHaveLength(63)
  })

  it('JSON nested deeper than MAX_JSON_DEPTH is refused before JSON.parse (both paths)', () => {
    const nested = `${'['.repeat(200_000)}${']'.repeat(200_000)}`
    const r = decode('impression', 'json', nested)
    expectError(r, 'MALFORMED_BODY')
    expect(!r.ok && r.error.detail).toBe(`nested deeper than ${MAX_JSON_DEPTH} levels`)
    // One such NDJSON line is that event's rejection; the others stand.
    const lines = decode('impression', 'ndjson', `${event('i1')}\n${nested}\n${event('i2')}\n`)
    expect(ok(lines).events).toHaveLength(2)
    expect(ok(lines).rejects.map((x) => [x.index, x.reason])).toEqual([
      [1, `invalid JSON: nested deeper than ${MAX_JSON_DEPTH} levels`],
    ])
  })

  it('nestedTooDeep skips brackets inside strings', () => {
    expect(nestedTooDeep(JSON.stringify({ a: '['.repeat(5000) }))).toBe(false)
    expect(nestedTooDeep(JSON.stringify({ a: '\\"['.repeat(5000) }))).toBe(false)
    expect(nestedTooDeep('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH))).toBe(false)
    expect(nestedTooDeep('['.repeat(MAX_JSON_DEPTH + 1))).toBe(true)
  })

  it('an Avro writer record of another name is refused before it is compiled', () => {
    const fields = Array.from({ length: 90 }, (_, i) => ({ name: `f${i}`, type: 'int' }))
    const r = decode('impression', 'avro', container({ type: 'record', name: 'Wide', fields }, []))
    expectError(r, 'SCHEMA_MISMATCH')
    expect(!r.ok && r.error.detail).toBe('no alias found for Wide')
  })
})
