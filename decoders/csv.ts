import { isUtf8 } from 'node:buffer'
import { parse as parseCsv } from 'csv-parse/sync'
import { bodyError } from '../events/errors.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import { Violation } from './normalize.js'
import { normalizerFor } from './normalizers.js'
import type { DecodeOptions, DecodeResult, Rejection } from './result.js'
import { stamp, tooManyEvents } from './result.js'

/**
 * CSV bodies (RFC 4180): a header row naming schema fields, then one event per record.
 * Cells are text; the schema says how to read each (numbers, ISO or epoch-ms times, enums;
 * nested values such as OpenRTB imp[] as JSON text in one cell). An empty unquoted cell is
 * "absent" (the field's default or null); a quoted empty cell "" is the empty string.
 *
 * Three paths with one output: bodies without a double quote are split directly; bodies with
 * well-formed quoting (user agents hold commas, so click logs quote them) are split by
 * wellQuotedRows; anything else goes through csv-parse, which owns the quoting rules and their
 * error messages. The direct paths measured ~10× csv-parse (bench/results/decoders.json).
 * Tests check the paths agree.
 */
interface Row {
  cells: (string | undefined)[]
  raw: string
}

export function decodeCsv(body: Buffer, options: DecodeOptions): DecodeResult {
  if (!isUtf8(body)) return { ok: false, error: bodyError('INVALID_UTF8', 'the body is not valid UTF-8') }
  let text = body.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let rows: Row[] | undefined
  if (text.includes('"')) {
    rows = wellQuotedRows(text, options.maxEvents + 1)
    if (rows === undefined) {
      try {
        rows = quotedRows(text, options.maxEvents + 1)
      } catch (err) {
        return { ok: false, error: bodyError('MALFORMED_BODY', `invalid CSV: ${(err as Error).message}`) }
      }
    }
  } else {
    rows = plainRows(text, options.maxEvents + 1)
  }
  if (rows.length === 0) return { ok: false, error: bodyError('MISSING_HEADER_ROW', 'the body is empty') }
  if (rows.length === 1) return { ok: false, error: bodyError('EMPTY_BODY', 'a header row but no records') }
  if (rows.length > options.maxEvents + 1) return tooManyEvents(options.maxEvents)

  const header = rows[0]!.cells.map((c) => c ?? '')
  const toRow = rowBuilder(header, options)
  if (typeof toRow === 'string') return { ok: false, error: bodyError('MISSING_HEADER_ROW', toRow) }

  const normalize = normalizerFor(options.type, 'text')
  const events: object[] = []
  const rejects: Rejection[] = []
  for (let r = 1; r < rows.length; r++) {
    const { cells, raw } = rows[r]!
    const index = r - 1
    if (cells.length !== header.length) {
      const reason = `has ${cells.length} fields, the header has ${header.length}`
      rejects.push({ index, field: null, reason, raw: Buffer.from(raw) })
      continue
    }
    const out = normalize(toRow(cells))
    if (out instanceof Violation)
      rejects.push({ index, field: out.field, reason: out.reason, raw: Buffer.from(raw) })
    else {
      stamp(out as object, options)
      events.push(out as object)
    }
  }
  return { ok: true, events, rejects }
}

/** Records of a body that holds no quote character: lines, then commas. Stops after `limit` rows. */
export function plainRows(text: string, limit: number): Row[] {
  const rows: Row[] = []
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0 // a BOM, as csv-parse's bom option
  while (start < text.length && rows.length <= limit) {
    let end = text.indexOf('\n', start)
    let next: number
    if (end === -1) {
      end = text.length
      next = end
    } else {
      next = end + 1
      if (end > start && text.charCodeAt(end - 1) === 13) end-- // CRLF
    }
    if (end > start) {
      const raw = text.slice(start, end)
      const cells: (string | undefined)[] = raw.split(',')
      for (let i = 0; i < cells.length; i++) if (cells[i] === '') cells[i] = undefined
      rows.push({ cells, raw: trimLineEnds(raw) }) // stray CRs at either end, as quotedRows's raw
    }
    start = next
  }
  return rows
}

/**
 * Records of a body with quotes, read the way quotedRows (csv-parse) reads them, for bodies whose
 * quoting is well formed: a quoted cell starts at a cell start, "" inside it is one quote, and
 * its closing quote is followed by a comma, a line end or the end. Anything else (a quote inside
 * an unquoted cell, text after a closing quote, an unclosed quote, a second BOM) returns
 * undefined and the caller hands the body to csv-parse, which owns those errors. Stops after
 * `limit` rows, as csv-parse's `to` does, so text after them is not looked at by either.
 * Measured ~10× faster than csv-parse with a cast function, which builds a context per cell.
 */
export function wellQuotedRows(text: string, limit: number): Row[] | undefined {
  const n = text.length
  if (text.charCodeAt(0) === 0xfeff) return undefined
  const rows: Row[] = []
  let pos = 0
  // Next quote at or after pos (n when none): lines before it take the quote-free path.
  let quote = -1
  while (pos < n && rows.length <= limit) {
    let lf = text.indexOf('\n', pos)
    if (lf === -1) lf = n
    if (quote < pos) {
      quote = text.indexOf('"', pos)
      if (quote === -1) quote = n
    }
    if (quote >= lf) {
      // A line without quotes, as plainRows splits it.
      let end = lf
      if (lf < n && end > pos && text.charCodeAt(end - 1) === 13) end-- // CRLF
      if (end > pos) {
        const raw = text.slice(pos, end)
        const cells: (string | undefined)[] = raw.split(',')
        for (let i = 0; i < cells.length; i++) if (cells[i] === '') cells[i] = undefined
        rows.push({ cells, raw: trimLineEnds(raw) })
      }
      pos = lf + 1
      continue
    }
    // A record holding a quote: cell by cell. It may span lines (quoted line breaks).
    const start = pos
    const cells: (string | undefined)[] = []
    let end: number // end of the record's text, before its delimiter
    for (;;) {
      if (text.charCodeAt(pos) === 34) {
        let from = pos + 1
        let value = ''
        for (;;) {
          const q = text.indexOf('"', from)
          if (q === -1) return undefined // not closed
          if (text.charCodeAt(q + 1) === 34) {
            value += text.slice(from, q + 1) // "" is one quote
            from = q + 2
            continue
          }
          value += text.slice(from, q)
          pos = q + 1
          break
        }
        cells.push(value)
        const c = text.charCodeAt(pos)
        if (c === 44) {
          pos++
          continue
        }
        end = pos
        if (pos >= n) break
        if (c === 10) {
          pos++
          break
        }
        if (c === 13 && text.charCodeAt(pos + 1) === 10) {
          pos += 2
          break
        }
        return undefined // text after a closing quote
      }
      let comma = text.indexOf(',', pos)
      if (comma === -1) comma = n
      if (lf < pos) {
        lf = text.indexOf('\n', pos)
        if (lf === -1) lf = n
      }
      const cellEnd = Math.min(comma, lf)
      if (quote < pos) {
        quote = text.indexOf('"', pos)
        if (quote === -1) quote = n
      }
      if (quote < cellEnd) return undefined // a quote inside an unquoted cell
      let valueEnd = cellEnd
      if (cellEnd === lf && lf < n && valueEnd > pos && text.charCodeAt(valueEnd - 1) === 13) valueEnd-- // CRLF
      cells.push(valueEnd > pos ? text.slice(pos, valueEnd) : undefined)
      if (cellEnd === comma && comma < n) {
        pos = comma + 1
        continue
      }
      end = cellEnd
      pos = cellEnd + 1
      break
    }
    rows.push({ cells, raw: trimLineEnds(text.slice(start, end)) })
  }
  return rows
}

// csv-parse's raw record text can carry line-break characters at either end; quotedRows strips them.
function trimLineEnds(raw: string): string {
  if (raw === '') return raw
  const first = raw.charCodeAt(0)
  const last = raw.charCodeAt(raw.length - 1)
  if (first !== 10 && first !== 13 && last !== 10 && last !== 13) return raw
  return raw.replace(/^[\r\n]+|[\r\n]+$/g, '')
}

/** Records of a body with quotes, by csv-parse. Throws on text that is not CSV (caller reports it). */
export function quotedRows(text: string, limit: number): Row[] {
  const records = parseCsv(text, {
    bom: true,
    skip_empty_lines: true,
    relax_column_count: true,
    record_delimiter: ['\r\n', '\n'],
    raw: true,
    to: limit + 1,
    // An unquoted empty cell is absent; a quoted one is the empty string.
    cast: (value, context) => (context.quoting || value !== '' ? value : undefined),
  }) as unknown as { record: (string | undefined)[]; raw: string }[]
  return records.map(({ record, raw }) => ({ cells: record, raw: raw.replace(/^[\r\n]+|[\r\n]+$/g, '') }))
}

/**
 * A function from one record's cells to an object keyed by schema field names, generated per
 * header so every row has the same shape. Only schema fields become keys; other columns are
 * ignored. Returns a message instead when the header is unusable.
 */
function rowBuilder(
  header: string[],
  options: DecodeOptions,
): ((cells: (string | undefined)[]) => object) | string {
  const fields = new Set(
    (EVENT_SCHEMAS[options.type].json as { fields: { name: string }[] }).fields.map((f) => f.name),
  )
  const seen = new Set<string>()
  const props: string[] = []
  for (let i = 0; i < header.length; i++) {
    const name = header[i]!
    if (seen.has(name) && name !== '') return `the header names column ${JSON.stringify(name)} twice`
    seen.add(name)
    if (fields.has(name)) props.push(`${JSON.stringify(name)}: c[${i}]`)
  }
  if (props.length === 0) {
    return `the header row names none of the ${options.type} fields (${[...fields].join(', ')})`
  }
  return new Function('c', `return { ${props.join(', ')} }`) as (cells: (string | undefined)[]) => object
}
