import { deepStrictEqual } from 'node:assert/strict'
import { Readable } from 'node:stream'
import { Ajv } from 'ajv'
import avro from 'avsc'
import { parse as parseCsvStream } from 'csv-parse'
import { parse as parseCsvSync } from 'csv-parse/sync'
import simdjson from 'simdjson'
import { type BodyOptions, decodeBody } from '../decoders/decode.js'
import { checkNativeBindings } from '../decoders/native-bindings.js'
import type { Encoding } from '../decoders/result.js'
import type { EventType } from '../events/catalog.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import { encodeWire } from '../events/wire.js'
import { encodeEvents } from '../generator/encode.js'
import type { Event } from '../generator/events.js'
import { generateEvents } from '../generator/funnel.js'
import { avroToJsonSchema } from './lib/avro-json-schema.js'
import { type HarnessOptions, type Measurement, measure, type Workload } from './lib/harness.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, compared } from './lib/results.js'

/**
 * Decoders on generated events, each beside a baseline measured in the same run (interleaved):
 *   JSON impressions, array and NDJSON: decodeBody vs JSON.parse + ajv validator of the same schema
 *   CSV clicks: decodeBody vs csv-parse record by record + a mapper to the same objects (checked equal)
 *   Avro OCF bid requests: decodeBody (+ Confluent wire framing) vs avsc decoding the same file
 * One thread: every figure is per core.
 */
export const description = 'JSON/NDJSON impressions, CSV clicks, Avro OCF bids → validated events (1 core)'

const EVENTS_PER_BODY = 1000
/** Bodies per case, rotated call by call so no single input gets special treatment. */
const BODIES = 4
const INGEST_TIME = 1_795_000_000_000
const SOURCE = 'bench'

const UNIT_EVENTS = 'events/s/core'
const UNIT_MB = 'MB/s/core'

function bodyOptions(type: EventType, encoding: Encoding): BodyOptions {
  return {
    type,
    encoding,
    contentEncoding: 'identity',
    maxBytes: 1 << 26,
    maxEvents: EVENTS_PER_BODY,
    ingestTime: INGEST_TIME,
    source: SOURCE,
  }
}

function generate(type: EventType): Event[][] {
  return Array.from({ length: BODIES }, (_, i) => generateEvents(type, EVENTS_PER_BODY, 1000 + i))
}

/** Cycles through the bodies. */
function rotating<T>(items: readonly T[]): () => T {
  let i = 0
  return () => items[i++ % items.length]!
}

function totalBytes(bodies: readonly Buffer[]): number {
  return bodies.reduce((n, b) => n + b.length, 0) / bodies.length
}

/** Candidate decodeBody; fails loudly if a generated body is not decoded whole. */
function decodeAll(body: Buffer, options: BodyOptions): object[] {
  const result = decodeBody(body, options)
  if (!result.ok) throw new Error(`${result.error.code}: ${result.error.detail}`)
  if (result.rejects.length > 0) throw new Error(`rejected: ${JSON.stringify(result.rejects[0]?.reason)}`)
  return result.events
}

// ---------------------------------------------------------------------------------------------
// JSON impressions

function ajvValidator(type: EventType): (value: unknown) => boolean {
  // unicode: false counts string lengths in UTF-16 units, as the normalizer does.
  const ajv = new Ajv({ unicode: false, allowUnionTypes: true })
  return ajv.compile(avroToJsonSchema(EVENT_SCHEMAS[type].json))
}

async function jsonCases(h: HarnessOptions): Promise<BenchResult[]> {
  const events = generate('impression')
  const arrays = events.map((e) => encodeEvents('impression', e, 'json'))
  const lines = events.map((e) => encodeEvents('impression', e, 'ndjson'))
  const validate = ajvValidator('impression')
  const arrayOptions = bodyOptions('impression', 'json')
  const lineOptions = bodyOptions('impression', 'ndjson')

  const ajvArray = (body: Buffer): unknown[] => {
    const doc = JSON.parse(body.toString('utf8')) as unknown[]
    const valid: unknown[] = []
    for (let i = 0; i < doc.length; i++) if (validate(doc[i])) valid.push(doc[i])
    return valid
  }
  const ajvLines = (body: Buffer): unknown[] => {
    const valid: unknown[] = []
    for (const line of body.toString('utf8').split('\n')) {
      if (line === '') continue
      const value: unknown = JSON.parse(line)
      if (validate(value)) valid.push(value)
    }
    return valid
  }
  // Sanity: both sides accept every generated event.
  for (let i = 0; i < BODIES; i++) {
    for (const [name, n] of [
      ['decodeBody json', decodeAll(arrays[i]!, arrayOptions).length],
      ['decodeBody ndjson', decodeAll(lines[i]!, lineOptions).length],
      ['ajv array', ajvArray(arrays[i]!).length],
      ['ajv ndjson', ajvLines(lines[i]!).length],
    ] as const) {
      if (n !== EVENTS_PER_BODY) throw new Error(`${name} accepted ${n} of ${EVENTS_PER_BODY} events`)
    }
  }

  const results: BenchResult[] = []
  for (const [label, bodies, options, baseline] of [
    ['json array', arrays, arrayOptions, ajvArray],
    ['ndjson', lines, lineOptions, ajvLines],
  ] as const) {
    const next = rotating(bodies)
    const bytes = totalBytes(bodies)
    const [candidate, base] = await measure(
      [
        { name: 'adgate decodeBody', events: EVENTS_PER_BODY, bytes, fn: () => decodeAll(next(), options) },
        { name: 'JSON.parse + ajv', events: EVENTS_PER_BODY, bytes, fn: () => baseline(next()) },
      ],
      h,
    )
    const title = `${label} impressions ×${EVENTS_PER_BODY}, decode+validate`
    results.push(...pair(title, candidate!, base!))
  }

  // simdjson, for the record: the issue asks to use it where it wins. Parse only, no validation.
  const simd = checkNativeBindings().some((p) => p.startsWith('simdjson'))
    ? undefined
    : (simdjson as typeof simdjson | undefined)
  const next = rotating(arrays)
  const bytes = totalBytes(arrays)
  const parseOnly: Workload[] = [
    { name: 'JSON.parse', events: EVENTS_PER_BODY, bytes, fn: () => JSON.parse(next().toString('utf8')) },
  ]
  if (simd) {
    parseOnly.push(
      {
        name: 'simdjson.parse',
        events: EVENTS_PER_BODY,
        bytes,
        fn: () => simd.parse(next().toString('utf8')),
      },
      {
        name: 'simdjson.lazyParse',
        events: EVENTS_PER_BODY,
        bytes,
        fn: () => simd.lazyParse(next().toString('utf8')),
      },
      {
        name: 'simdjson.isValid',
        events: EVENTS_PER_BODY,
        bytes,
        fn: () => simd.isValid(next().toString('utf8')),
      },
    )
  }
  const parsed = await measure(parseOnly, h)
  const title = `json array impressions ×${EVENTS_PER_BODY}, parse only`
  const jsonParse = parsed[0]!
  results.push(...single(`${title}: ${jsonParse.name} (reference)`, jsonParse))
  for (const m of parsed.slice(1)) results.push(...pair(title, m, jsonParse, false))
  if (!simd) process.stdout.write('  simdjson native binding missing: simdjson cases skipped\n')
  return results
}

// ---------------------------------------------------------------------------------------------
// CSV clicks

/** The baseline's column mapper: csv-parse's `columns: true` record → the canonical click. */
function clickFromColumns(r: Record<string, string>): object {
  return {
    event_id: r.event_id,
    event_time: Number(r.event_time),
    ingest_time: INGEST_TIME,
    source: SOURCE,
    click_id: r.click_id,
    impression_id: r.impression_id,
    campaign_id: r.campaign_id,
    user_agent: r.user_agent || null,
    ip: r.ip || null,
    landing_url: r.landing_url || null,
  }
}

/** csv-parse's streaming API, records consumed one by one as the parser emits them. */
function csvParseStream(body: Buffer): Promise<object[]> {
  return new Promise((resolve, reject) => {
    const out: object[] = []
    const parser = parseCsvStream({ columns: true, skip_empty_lines: true })
    parser.on('data', (record: Record<string, string>) => out.push(clickFromColumns(record)))
    parser.on('end', () => resolve(out))
    parser.on('error', reject)
    Readable.from([body]).pipe(parser)
  })
}

/** csv-parse's synchronous API with a per-record callback: the fastest way to use csv-parse. */
function csvParseSync(body: Buffer): object[] {
  return parseCsvSync(body, {
    columns: true,
    skip_empty_lines: true,
    on_record: (record: Record<string, string>) => clickFromColumns(record),
  }) as object[]
}

async function csvCases(h: HarnessOptions): Promise<BenchResult[]> {
  const bodies = generate('click').map((e) => encodeEvents('click', e, 'csv'))
  const options = bodyOptions('click', 'csv')
  // Same output, checked once before timing.
  for (const body of bodies) {
    const events = decodeAll(body, options)
    deepStrictEqual(csvParseSync(body), events)
    deepStrictEqual(await csvParseStream(body), events)
  }
  const next = rotating(bodies)
  const bytes = totalBytes(bodies)
  const [candidate, sync, stream] = await measure(
    [
      { name: 'adgate decodeBody', events: EVENTS_PER_BODY, bytes, fn: () => decodeAll(next(), options) },
      {
        name: 'csv-parse sync on_record + mapper',
        events: EVENTS_PER_BODY,
        bytes,
        fn: () => csvParseSync(next()),
      },
      { name: 'csv-parse stream + mapper', events: EVENTS_PER_BODY, bytes, fn: () => csvParseStream(next()) },
    ],
    h,
  )
  const title = `csv clicks ×${EVENTS_PER_BODY}, decode+validate`
  // The ratio is taken against the faster way of using csv-parse.
  const base = sync!.eventsPerSec >= stream!.eventsPerSec ? sync! : stream!
  const other = base === sync ? stream! : sync!
  return [...pair(title, candidate!, base), ...single(`${title}: ${other.name}`, other)]
}

// ---------------------------------------------------------------------------------------------
// Avro OCF bid requests

const OCF_HEADER = avro.Type.forSchema({
  type: 'record',
  name: 'Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
})
const LONG = avro.Type.forSchema('long')

/**
 * The baseline: every record of a null-codec container decoded by avsc's public API with the
 * type known in advance (no writer-schema compile, no checks beyond avsc's own).
 */
function avscDecodeFile(type: avro.Type, buf: Buffer): unknown[] {
  const out: unknown[] = []
  let pos = OCF_HEADER.decode(buf, 0).offset
  while (pos < buf.length) {
    const count = LONG.decode(buf, pos)
    const size = LONG.decode(buf, count.offset)
    pos = size.offset
    for (let i = 0; i < (count.value as number); i++) {
      const r = type.decode(buf, pos)
      out.push(r.value)
      pos = r.offset
    }
    pos += 16 // sync marker
  }
  return out
}

/** avsc's BlockDecoder stream, the way its docs read container files (compiles the writer schema per file). */
function avscBlockDecoder(body: Buffer): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const out: unknown[] = []
    const decoder = new avro.streams.BlockDecoder()
    decoder.on('data', (v: unknown) => out.push(v))
    decoder.on('end', () => resolve(out))
    decoder.on('error', reject)
    decoder.end(body)
  })
}

async function avroCases(h: HarnessOptions): Promise<BenchResult[]> {
  const schema = EVENT_SCHEMAS.bid
  const bodies = generate('bid').map((e) => encodeEvents('bid', e, 'avro'))
  const options = bodyOptions('bid', 'avro')
  const framed = (body: Buffer): Buffer[] => {
    const events = decodeAll(body, options)
    const out = new Array<Buffer>(events.length)
    for (let i = 0; i < events.length; i++) out[i] = encodeWire(schema, events[i])
    return out
  }
  for (const body of bodies) {
    const stamp = (v: unknown) => ({ ...(v as object), ingest_time: INGEST_TIME, source: SOURCE })
    const events = decodeAll(body, options)
    deepStrictEqual(
      events.map((e) => ({ ...e })),
      avscDecodeFile(schema.type, body).map(stamp),
    )
    if ((await avscBlockDecoder(body)).length !== events.length) throw new Error('BlockDecoder count differs')
  }
  const next = rotating(bodies)
  const bytes = totalBytes(bodies)
  const [decoded, withFraming, base, stream] = await measure(
    [
      { name: 'adgate decodeBody', events: EVENTS_PER_BODY, bytes, fn: () => decodeAll(next(), options) },
      { name: 'adgate decodeBody + wire framing', events: EVENTS_PER_BODY, bytes, fn: () => framed(next()) },
      {
        name: 'avsc Type.decode loop',
        events: EVENTS_PER_BODY,
        bytes,
        fn: () => avscDecodeFile(schema.type, next()),
      },
      {
        name: 'avsc BlockDecoder stream',
        events: EVENTS_PER_BODY,
        bytes,
        fn: () => avscBlockDecoder(next()),
      },
    ],
    h,
  )
  const title = `avro OCF bids ×${EVENTS_PER_BODY} (null codec)`
  const overhead = (m: Measurement): BenchResult => ({
    case: `${title}: ${m.name}`,
    metric: 'overhead vs avsc',
    value: (base!.eventsPerSec / m.eventsPerSec - 1) * 100,
    unit: '% time/event',
  })
  return [
    ...pair(`${title}, decode+validate`, decoded!, base!),
    overhead(decoded!),
    ...pair(`${title}, decode+validate+frame`, withFraming!, base!, false),
    overhead(withFraming!),
    ...single(`${title}: ${stream!.name}`, stream!),
  ]
}

// ---------------------------------------------------------------------------------------------

/** Candidate rows (with baseline and ratio), then, unless told not to, the baseline's own rows. */
function pair(title: string, candidate: Measurement, base: Measurement, withBase = true): BenchResult[] {
  const rows = [
    compared(
      `${title}: ${candidate.name} vs ${base.name}`,
      'events/s',
      UNIT_EVENTS,
      candidate.eventsPerSec,
      base.eventsPerSec,
    ),
    compared(
      `${title}: ${candidate.name} vs ${base.name}`,
      'MB/s',
      UNIT_MB,
      candidate.mbPerSec,
      base.mbPerSec,
    ),
  ]
  return withBase ? [...rows, ...single(`${title}: ${base.name} (baseline)`, base)] : rows
}

function single(name: string, m: Measurement): BenchResult[] {
  return [
    { case: name, metric: 'events/s', value: m.eventsPerSec, unit: UNIT_EVENTS },
    { case: name, metric: 'MB/s', value: m.mbPerSec, unit: UNIT_MB },
  ]
}

export async function run(options: RunOptions = { quick: false }): Promise<BenchResult[]> {
  const h: HarnessOptions = options.quick ? { warmupMs: 100, runs: 3, runMs: 100 } : {}
  process.stdout.write('  single-threaded: every figure is per core\n')
  return [...(await jsonCases(h)), ...(await csvCases(h)), ...(await avroCases(h))]
}
