import { isUtf8 } from 'node:buffer'
import { bodyError } from '../events/errors.js'
import { bodyField, recordOf } from '../events/schema-model.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import { Violation } from './normalize.js'
import { normalizerFor } from './normalizers.js'
import type { DecodeOptions, DecodeResult, Rejection } from './result.js'
import { overBudget, rejection, singleRejection, stamp, tooCostly, tooManyEvents } from './result.js'

/**
 * CSV bodies (RFC 4180): a header row naming schema fields, then one event per record.
 * Cells are text; the schema says how to read each (numbers, ISO or epoch-ms times, enums;
 * nested values such as OpenRTB imp[] as JSON text in one cell). An empty unquoted cell is
 * "absent" (the field's default or null); a quoted empty cell "" is the empty string.
 *
 * Two paths with one output: bodies without a double quote are split directly; bodies with
 * quotes (user agents hold commas, so click logs quote them) by wellQuotedRows, which refuses
 * quoting that is not well formed. Both are linear in the body and measured ~10× csv-parse
 * (bench/results/decoders.json); tests check they read text exactly as csv-parse does.
 */
export interface Row {
  cells: (string | undefined)[]
  raw: string
}

/** Quoting that is not CSV, with where (line, from 1) and what. */
export class QuoteError {
  readonly message: string
  constructor(text: string, at: number, why: string) {
    let line = 1
    for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) line++
    this.message = `invalid CSV: ${why}, line ${line}`
  }
}

export function decodeCsv(body: Buffer, options: DecodeOptions): DecodeResult {
  if (!isUtf8(body)) return { ok: false, error: bodyError('INVALID_UTF8', 'the body is not valid UTF-8') }
  let text = body.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const rows = text.includes('"')
    ? wellQuotedRows(text, options.maxEvents + 1)
    : plainRows(text, options.maxEvents + 1)
  if (rows instanceof QuoteError) return { ok: false, error: bodyError('MALFORMED_BODY', rows.message) }
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
    if (overBudget(options, index)) return tooCostly()
    if (cells.length !== header.length) {
      const reason = `has ${cells.length} fields, the header has ${header.length}`
      rejects.push(singleRejection(index, null, reason, Buffer.from(raw)))
      continue
    }
    const out = normalize(toRow(cells))
    if (out instanceof Violation) rejects.push(rejection(index, out.errors, Buffer.from(raw)))
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
 * Records of a body with quotes, read as csv-parse reads them (the tests' reference), in one pass
 * linear in the text: a quoted cell starts at a cell start, "" inside it is one quote, and its
 * closing quote is followed by a comma, a line end or the end (RFC 4180 §2). Anything else (a
 * quote inside an unquoted cell, text after a closing quote, an unclosed quote, a second BOM) is
 * a QuoteError, as csv-parse refuses those too. (csv-parse itself is not called: on long rows of
 * quoted cells its time grew with the square of the cells, 20k cells ~1 s; issue 15.) Stops
 * after `limit` rows, as csv-parse's `to` does, so text after them is not looked at.
 */
export function wellQuotedRows(text: string, limit: number): Row[] | QuoteError {
  const n = text.length
  if (text.charCodeAt(0) === 0xfeff) return new QuoteError(text, 0, 'a second byte-order mark')
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
          if (q === -1) return new QuoteError(text, pos, 'a quoted cell is not closed')
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
        return new QuoteError(text, pos, 'text after the closing quote of a cell')
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
      if (quote < cellEnd)
        return new QuoteError(
          text,
          quote,
          'a quote inside an unquoted cell (quote the cell and double it: "a""b")',
        )
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

/**
 * A function from one record's cells to an object keyed by schema field names, generated per
 * header so every row has the same shape. Other columns are ignored, unless the record keeps
 * what it does not model (a rest field, as OpenRTB bid requests do): then they are kept too. A bid
 * body's columns are either the envelope's fields (with a `request` column) or, as senders have
 * them, the request's own. Returns a message instead when the header is unusable.
 */
function rowBuilder(
  header: string[],
  options: DecodeOptions,
): ((cells: (string | undefined)[]) => object) | string {
  const model = EVENT_SCHEMAS[options.type].model
  const body = bodyField(model)
  const record = body !== null && !header.includes(body.name) ? recordOf(body.node)! : model
  const fields = new Set(
    record.fields.filter((f) => f.role !== 'rest' && f.role !== 'micros').map((f) => f.name),
  )
  const keepAll = record.fields.some((f) => f.role === 'rest')
  const seen = new Set<string>()
  const props: string[] = []
  let known = 0
  for (let i = 0; i < header.length; i++) {
    const name = header[i]!
    if (seen.has(name) && name !== '') return `the header names column ${JSON.stringify(name)} twice`
    seen.add(name)
    if (fields.has(name)) {
      known++
      props.push(`${JSON.stringify(name)}: c[${i}]`)
    } else if (keepAll && name !== '') {
      props.push(`[${JSON.stringify(name)}]: c[${i}]`) // computed: a column named __proto__ stays a key
    }
  }
  if (known === 0) {
    return `the header row names none of the ${options.type} fields (${[...fields].join(', ')})`
  }
  return new Function('c', `return { ${props.join(', ')} }`) as (cells: (string | undefined)[]) => object
}
