import { createHash } from 'node:crypto'
import { EVENT_TYPES, type EventType } from '../events/catalog.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'

/** Query parameters with a meaning of their own to the trackers, not event fields. */
const CONTROL = new Set(['r', 'sig'])

/** What a tracker hit knows besides its query: the request's own facts, used as field defaults. */
export interface HitContext {
  readonly ingestTime: number
  readonly userAgent: string
  readonly ip: string
}

/** Each event type's field names, and the length bound of those a default may fill. */
const FIELDS = Object.fromEntries(
  EVENT_TYPES.map((type) => {
    const fields = (EVENT_SCHEMAS[type].json as unknown as { fields: Record<string, unknown>[] }).fields
    return [
      type,
      new Map(fields.map((f) => [f.name as string, (f['adgate.maxLength'] as number) ?? Infinity])),
    ]
  }),
) as unknown as Readonly<Record<EventType, ReadonlyMap<string, number>>>

/**
 * A tracker hit as a one-record CSV body: a query string is a row of named text cells, and the
 * CSV decoder already reads text cells against the schema (numbers, times, enums, bounds, unknown
 * columns), so a hit goes through exactly the path of a POSTed CSV body. An empty parameter is an
 * absent field. Fields the query leaves out default to what the request itself says:
 *   event_id    derived from the query (type + sorted parameters), so a repeated hit of the same
 *               URL (a browser retry) is the same event and dedups downstream;
 *   event_time  the receipt time;  user_agent, ip  the request's.
 * A click's `url` (the landing page) is its landing_url.
 * Returns the body, or why the query cannot be one event.
 */
export function hitToCsv(type: EventType, params: URLSearchParams, ctx: HitContext): Buffer | string {
  const cells = new Map<string, string>()
  for (const [name, value] of params) {
    if (CONTROL.has(name)) continue
    if (cells.has(name)) return `parameter ${JSON.stringify(name)} is given twice`
    if (name === '') return 'a parameter has no name'
    cells.set(name, value)
  }
  const fields = FIELDS[type]
  // A default never makes the event invalid: a user agent longer than the field's bound is cut.
  const fill = (field: string, value: string) => {
    const max = fields.get(field)
    if (max !== undefined && !cells.get(field) && value !== '') cells.set(field, value.slice(0, max))
  }
  // The click tracker's url parameter is the click's landing_url (one field, not two).
  const url = cells.get('url')
  if (type === 'click' && url !== undefined && !cells.get('landing_url')) {
    cells.delete('url')
    cells.set('landing_url', url)
  }
  fill('event_id', derivedEventId(type, cells))
  fill('event_time', String(ctx.ingestTime))
  fill('user_agent', ctx.userAgent)
  fill('ip', ctx.ip)
  let header = ''
  let row = ''
  for (const [name, value] of cells) {
    const sep = header === '' ? '' : ','
    header += sep + quote(name)
    row += sep + (value === '' ? '' : quote(value))
  }
  const text = `${header}\n${row}\n`
  // Allocated outside Node's pool: the decode pool transfers bodies to its threads.
  const body = Buffer.allocUnsafeSlow(Buffer.byteLength(text))
  body.write(text)
  return body
}

function derivedEventId(type: EventType, cells: ReadonlyMap<string, string>): string {
  const hash = createHash('sha256').update(type)
  for (const name of [...cells.keys()].sort()) hash.update(`\n${name}=${cells.get(name)}`)
  return `t-${hash.digest('hex').slice(0, 32)}`
}

/** RFC 4180: always quoted, so commas, quotes and line breaks in values survive. */
function quote(cell: string): string {
  return `"${cell.replaceAll('"', '""')}"`
}
