import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { plainRows, QuoteError, wellQuotedRows } from '../../decoders/csv.js'
import { quotedRows } from '../support/csv-reference.js'
import { decode, ok } from '../support/decode.js'
import { runs } from '../support/runs.js'

/**
 * decoders/csv.ts reads bodies without a double quote by splitting lines and commas, and the rest
 * with csv-parse (or its own well-quoted reader). These properties check the paths agree cell
 * for cell and raw text for raw text, csv-parse being the reference.
 */

// Cells without quotes or commas; empty, spaces and a stray CR are the interesting ones.
const plainCell = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 10, arbitrary: fc.stringMatching(/^[a-z0-9 ._:/-]{1,8}$/) },
  { weight: 1, arbitrary: fc.constantFrom(' ', '\r', 'a\rb', '\tx', 'é€😀', '\r\r') },
)

const table = fc.array(fc.array(plainCell, { minLength: 1, maxLength: 6 }), { maxLength: 12 })

/** Rows joined with a random mix of LF and CRLF, blank lines between, a trailing newline or not, a BOM or not. */
const plainText = fc
  .record({
    rows: table,
    eols: fc.array(fc.constantFrom('\n', '\r\n'), { minLength: 20, maxLength: 20 }),
    blanks: fc.array(fc.constantFrom('', '', '', '\n', '\r\n', '\n\n', '\r\n\r\n'), {
      minLength: 20,
      maxLength: 20,
    }),
    trailing: fc.constantFrom('', '\n', '\r\n', '\n\n'),
    bom: fc.boolean(),
    leading: fc.constantFrom('', '\n', '\r\n'),
  })
  .map(({ rows, eols, blanks, trailing, bom, leading }) => {
    let text = bom ? '\ufeff' : ''
    text += leading
    rows.forEach((cells, i) => {
      if (i > 0) text += eols[i % eols.length]! + blanks[i % blanks.length]!
      text += cells.join(',')
    })
    return text + (rows.length > 0 ? trailing : '')
  })

// csv-parse is the reference.
const reference = (text: string, limit: number) => quotedRows(text, limit)

describe('CSV paths agree', () => {
  it('plainRows reads quote-free text exactly as csv-parse does (cells and raw)', () => {
    fc.assert(
      fc.property(plainText, fc.integer({ min: 0, max: 14 }), (text, limit) => {
        expect(plainRows(text, limit)).toEqual(reference(text, limit))
      }),
      { numRuns: runs(1500) },
    )
  })

  it.each([
    ['a lone CR ending the last line', 'a,b\r'],
    ['a row of CRs', 'h\n\r\r\nx'],
    ['a cell starting with CR', 'h\n\rx,y\n'],
    ['a byte order mark', '\ufeffa,b\nc,d\n'],
    ['whitespace-only lines', 'a\n \n\t\n'],
  ])('plainRows and csv-parse agree on %s', (_, text) => {
    expect(plainRows(text, 100)).toEqual(reference(text, 100))
  })

  // wellQuotedRows, when present: text with quoted cells (commas, quotes, line breaks inside).
  const quotedCell = fc.oneof(
    plainCell.map((c) => ({ text: c, quote: false })),
    fc
      .stringMatching(/^[a-z ,"\r\n]{0,8}$/)
      .map((c) => ({ text: `"${c.replace(/"/g, '""')}"`, quote: true })),
  )
  const quotedText = fc
    .record({
      rows: fc.array(fc.array(quotedCell, { minLength: 1, maxLength: 5 }), { maxLength: 10 }),
      eols: fc.array(fc.constantFrom('\n', '\r\n', '\n\n', '\r\n\r\n'), { minLength: 10, maxLength: 10 }),
      trailing: fc.constantFrom('', '\n', '\r\n'),
    })
    .map(({ rows, eols, trailing }) => {
      const lines = rows.map((cells) => cells.map((c) => c.text).join(','))
      return lines.map((l, i) => (i === 0 ? l : eols[i % eols.length]! + l)).join('') + trailing
    })
  it('wellQuotedRows reads well-quoted text exactly as csv-parse does', () => {
    fc.assert(
      fc.property(quotedText, fc.integer({ min: 0, max: 12 }), (text, limit) => {
        expect(wellQuotedRows(text, limit)).toEqual(reference(text, limit))
      }),
      { numRuns: runs(1500) },
    )
  })

  it('wellQuotedRows refuses exactly the text csv-parse refuses (stray, unclosed or trailing quotes)', () => {
    const hostile = fc
      .array(fc.constantFrom('a', ',', '"', '\n', '\r\n', 'b "c"', '""'), { maxLength: 30 })
      .map((parts) => parts.join(''))
    fc.assert(
      fc.property(hostile, (text) => {
        let expected: unknown
        try {
          expected = reference(text, 1000)
        } catch {
          expected = 'refused'
        }
        const rows = wellQuotedRows(text, 1000)
        expect(rows instanceof QuoteError ? 'refused' : rows).toEqual(expected)
      }),
      { numRuns: runs(3000) },
    )
  })

  it('decodeCsv gives the same events and rejects whichever path reads the body', () => {
    const header = 'event_id,event_time,click_id,impression_id,campaign_id,user_agent,ip,landing_url'
    const row = fc
      .tuple(
        fc.constantFrom('ev-1', '', 'x'.repeat(65)),
        fc.constantFrom('0', '1793536200000', '2026-11-01T12:30:00Z', '-1', 'soon', ''),
        fc.constantFrom('c', ''),
        fc.constantFrom('i', ''),
        fc.constantFrom('m', ''),
        fc.constantFrom('Mozilla', ''),
        fc.constantFrom('10.0.0.1', ''),
        fc.constantFrom('https://x.example/', ''),
        fc.boolean(),
      )
      .map(([...cells]) => {
        const short = cells.pop() as boolean
        return (short ? cells.slice(0, 5) : cells).join(',')
      })
    fc.assert(
      fc.property(
        fc.array(row, { minLength: 1, maxLength: 8 }),
        fc.constantFrom('\n', '\r\n'),
        (rows, eol) => {
          // An extra column, quoted, sends the body down the quoting path; it is not a schema field
          // (kept in _unknown by both).
          const plain = [`${header},note`, ...rows.map((r) => `${r},n`)].join(eol)
          const quoted = [`${header},"note"`, ...rows.map((r) => `${r},"n"`)].join(eol)
          const a = ok(decode('click', 'csv', plain))
          const b = ok(decode('click', 'csv', quoted))
          expect(b.events).toEqual(a.events)
          const shape = (r: typeof a) =>
            r.rejects.map((x) => [x.index, x.field, x.reason.replace(/\d+/g, 'n')])
          expect(shape(b)).toEqual(shape(a))
        },
      ),
      { numRuns: runs(300) },
    )
  })
})
