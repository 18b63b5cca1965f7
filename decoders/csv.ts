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
 * Two paths with one output: bodies without a double quote, which is what click and
 * conversion logs look like, are split directly (measured ≥3× csv-parse, see bench); bodies
 * with quotes go through csv-parse, which owns the quoting rules. Tests check both agree.
 */
interface Row {
  cells: (string | undefined)[]
  raw: string
}

export function decodeCsv(body: Buffer, options: DecodeOptions): DecodeResult {
  if (!isUtf8(body)) return { ok: false, error: bodyError('INVALID_UTF8', 'the body is not valid UTF-8') }
  let text = body.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  let rows: Row[]
  if (text.includes('"')) {
    try {
      rows = quotedRows(text, options.maxEvents + 1)
    } catch (err) {
      return { ok: false, error: bodyError('MALFORMED_BODY', `invalid CSV: ${(err as Error).message}`) }
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
  let start = 0
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
      rows.push({ cells, raw })
    }
    start = next
  }
  return rows
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
