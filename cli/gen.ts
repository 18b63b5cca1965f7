import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { Encoding } from '../decoders/result.js'
import { EVENT_TYPES, isEventType } from '../events/catalog.js'
import { type AnomalyKind, generateSourcedTraffic } from '../generator/anomalies.js'
import { CONTENT_TYPE, encodeEvents } from '../generator/encode.js'
import { DEFAULT_START, generateEvents, generateFunnel } from '../generator/funnel.js'

export const GEN_HELP = `adgate gen — write generated events

  adgate gen --type bid|impression|click|conversion --count N --format json|ndjson|csv|avro [--seed S]
      events of one type to stdout (parents are implied, not written)
  adgate gen --funnel DIR [--bids N] [--format F] [--seed S] [--duplicates R] [--out-of-order R]
             [--late R] [--invalid R] [--bot-clicks R]
      a consistent funnel (bids → wins → impressions → clicks → conversions) of N bids (10000),
      one file per type; R are shares in [0, 1]. Each type is written in the given format (default:
      its primary one: bids avro, impressions json, clicks and conversions csv).
  adgate gen --traffic DIR --sources a,b,c,… [--bids N] [--anomalies click_flood,ctr_spike,stale_source]
             [--span-hours H] [--seed S]
      traffic from several sources with labelled anomalies injected (generator/anomalies.ts): one
      NDJSON file per source and type (post each with that source's API key) in arrival order,
      each event with its ingest time, and labels.json naming each anomaly's subject and window;
      at least 3 sources, N bids (200000) over H hours (4), no anomalies unless named
`

const PRIMARY: Readonly<Record<string, Encoding>> = {
  bid: 'avro',
  impression: 'json',
  click: 'csv',
  conversion: 'csv',
}
const EXTENSION: Readonly<Record<Encoding, string>> = {
  json: 'json',
  ndjson: 'ndjson',
  csv: 'csv',
  avro: 'avro',
}

export function gen(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      type: { type: 'string' },
      count: { type: 'string' },
      format: { type: 'string' },
      seed: { type: 'string', default: '1' },
      funnel: { type: 'string' },
      bids: { type: 'string' },
      duplicates: { type: 'string' },
      'out-of-order': { type: 'string' },
      late: { type: 'string' },
      invalid: { type: 'string' },
      'bot-clicks': { type: 'string' },
      traffic: { type: 'string' },
      sources: { type: 'string' },
      anomalies: { type: 'string' },
      'span-hours': { type: 'string' },
      help: { type: 'boolean' },
    },
  })
  if (values.help) {
    process.stdout.write(GEN_HELP)
    return 0
  }
  const seed = wholeNumber('--seed', values.seed)
  const format = values.format === undefined ? undefined : encodingOf(values.format)

  if (values.traffic !== undefined) {
    const kinds = (values.anomalies ?? '').split(',').filter(Boolean)
    for (const k of kinds)
      if (!['click_flood', 'ctr_spike', 'stale_source'].includes(k))
        throw new UsageError(`--anomalies: ${k} is not click_flood, ctr_spike or stale_source`)
    const sources = (values.sources ?? 'ssp-a,ssp-b,ssp-c,ssp-d').split(',').filter(Boolean)
    if (sources.length < 3) throw new UsageError('--sources needs at least 3 names')
    const { events, labels } = generateSourcedTraffic({
      seed,
      bids: wholeNumber('--bids', values.bids ?? '200000'),
      spanMs: wholeNumber('--span-hours', values['span-hours'] ?? '4') * 3_600_000,
      start: DEFAULT_START,
      sources,
      anomalies: kinds as AnomalyKind[],
    })
    mkdirSync(values.traffic, { recursive: true })
    const files = new Map<string, string[]>()
    for (const { type, event } of events) {
      const name = `${event.source}.${type}s.ndjson`
      let lines = files.get(name)
      if (lines === undefined) {
        lines = []
        files.set(name, lines)
      }
      lines.push(JSON.stringify(event))
    }
    for (const [name, lines] of files) writeFileSync(join(values.traffic, name), `${lines.join('\n')}\n`)
    writeFileSync(join(values.traffic, 'labels.json'), `${JSON.stringify(labels, null, 2)}\n`)
    process.stderr.write(
      `${values.traffic}: ${events.length} events in ${files.size} files, ${labels.length} labels\n`,
    )
    return 0
  }

  if (values.funnel !== undefined) {
    const funnel = generateFunnel({
      seed,
      bids: wholeNumber('--bids', values.bids ?? '10000'),
      duplicates: share('--duplicates', values.duplicates),
      outOfOrder: share('--out-of-order', values['out-of-order']),
      late: share('--late', values.late),
      invalid: share('--invalid', values.invalid),
      botClicks: share('--bot-clicks', values['bot-clicks']),
    })
    mkdirSync(values.funnel, { recursive: true })
    for (const type of EVENT_TYPES) {
      const encoding = format ?? PRIMARY[type]!
      const file = join(values.funnel, `${type}s.${EXTENSION[encoding]}`)
      writeFileSync(file, encodeEvents(type, funnel[type], encoding))
      process.stderr.write(`${file}: ${funnel[type].length} events (${CONTENT_TYPE[encoding]})\n`)
    }
    return 0
  }

  if (values.type === undefined || !isEventType(values.type))
    throw new UsageError('--type must be bid, impression, click or conversion')
  if (format === undefined) throw new UsageError('--format must be json, ndjson, csv or avro')
  const events = generateEvents(values.type, wholeNumber('--count', values.count ?? ''), seed)
  process.stdout.write(encodeEvents(values.type, events, format))
  return 0
}

export class UsageError extends Error {}

function encodingOf(value: string): Encoding {
  if (value === 'json' || value === 'ndjson' || value === 'csv' || value === 'avro') return value
  throw new UsageError('--format must be json, ndjson, csv or avro')
}

function wholeNumber(flag: string, value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number`)
  return Number(value)
}

function share(flag: string, value: string | undefined): number {
  if (value === undefined) return 0
  const n = Number(value)
  if (!(n >= 0 && n <= 1)) throw new UsageError(`${flag} must be a share between 0 and 1`)
  return n
}
