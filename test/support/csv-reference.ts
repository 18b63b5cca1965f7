import { parse as parseCsv } from 'csv-parse/sync'
import type { Row } from '../../decoders/csv.js'

/**
 * The reference the CSV decoder's paths are checked against: csv-parse, called as adgate once did
 * in production (it was dropped there for its quadratic time on long rows of quoted cells).
 * Throws on text that is not CSV.
 */
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
