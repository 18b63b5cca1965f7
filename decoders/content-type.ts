import type { Encoding } from './result.js'

/** Media types accepted on event bodies, and the encoding each selects. */
const MEDIA_TYPES: Readonly<Record<string, Encoding>> = {
  'application/json': 'json',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'text/csv': 'csv',
  'application/avro': 'avro',
  'avro/binary': 'avro',
}

export const ACCEPTED_CONTENT_TYPES = Object.keys(MEDIA_TYPES)

/** The encoding for a Content-Type header, ignoring parameters; undefined when not accepted. */
export function parseContentType(header: string | undefined): Encoding | undefined {
  if (!header) return undefined
  const semi = header.indexOf(';')
  const media = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase()
  const encoding = MEDIA_TYPES[media]
  if (encoding === undefined || semi === -1) return encoding
  // Text bodies must be UTF-8; refuse a declared other charset rather than misread it.
  const charset = /charset\s*=\s*"?([\w-]+)/i.exec(header.slice(semi))?.[1]?.toLowerCase()
  if (charset && charset !== 'utf-8' && charset !== 'utf8') return undefined
  return encoding
}
