import { describe, expect, it } from 'vitest'
import { ACCEPTED_CONTENT_TYPES, parseContentType } from '../../decoders/content-type.js'
import { CONTENT_TYPE } from '../../generator/encode.js'

describe('Content-Type', () => {
  it.each([
    ['application/json', 'json'],
    ['application/x-ndjson', 'ndjson'],
    ['application/ndjson', 'ndjson'],
    ['application/jsonl', 'ndjson'],
    ['text/csv', 'csv'],
    ['application/avro', 'avro'],
    ['avro/binary', 'avro'],
    ['Application/JSON', 'json'],
    ['  text/csv  ', 'csv'],
  ] as const)('%j selects %s', (header, encoding) => {
    expect(parseContentType(header)).toBe(encoding)
  })

  it.each([
    ['application/json; charset=utf-8', 'json'],
    ['application/json;charset=UTF-8', 'json'],
    ['text/csv; charset="utf-8"; header=present', 'csv'],
    ['text/csv; header=present; charset=utf8', 'csv'],
    ['application/x-ndjson; charset = utf-8', 'ndjson'],
    ['text/csv; header=present', 'csv'],
    ['application/json;', 'json'],
  ] as const)('accepts UTF-8 and other parameters: %j', (header, encoding) => {
    expect(parseContentType(header)).toBe(encoding)
  })

  it.each([
    'application/json; charset=iso-8859-1',
    'text/csv; charset=latin1',
    'text/csv; charset="utf-16"',
    'application/x-ndjson; charset=UTF-16LE',
  ])('refuses a declared charset other than UTF-8: %j', (header) => {
    expect(parseContentType(header)).toBeUndefined()
  })

  it.each([
    undefined,
    '',
    'text/plain',
    'application/xml',
    'application/json-seq',
    'multipart/form-data',
    'json',
    'text/csvx',
  ])('refuses %j', (header) => {
    expect(parseContentType(header)).toBeUndefined()
  })

  it("accepts the generator's content types and lists each accepted type once", () => {
    for (const [encoding, header] of Object.entries(CONTENT_TYPE))
      expect(parseContentType(header)).toBe(encoding)
    expect(new Set(ACCEPTED_CONTENT_TYPES).size).toBe(ACCEPTED_CONTENT_TYPES.length)
    for (const t of ACCEPTED_CONTENT_TYPES) expect(parseContentType(t)).toBeDefined()
  })
})
