import { deepStrictEqual } from 'node:assert/strict'
import { Readable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { Ajv } from 'ajv'
import avro from 'avsc'
import { parse as parseCsvStream } from 'csv-parse'
import { parse as parseCsvSync } from 'csv-parse/sync'
import { CONTAINER_HEADER_SCHEMA } from '../decoders/avro-container.js'
import { type BodyOptions, decodeBody } from '../decoders/decode.js'
import type { Encoding } from '../decoders/result.js'
import {
  nativeStatus,
  SPAN,
  type TranscodeResult,
  transcodeJsonJs,
  transcodeJsonNative,
} from '../decoders/transcode.js'
import type { EventType } from '../events/catalog.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import { encodeWire, frameWithStamps } from '../events/wire.js'
import { encodeEvents } from '../generator/encode.js'
import type { Event } from '../generator/events.js'
import { generateEvents } from '../generator/funnel.js'
import { avroToJsonSchema } from './lib/avro-json-schema.js'
import { baselineBuild } from './lib/baseline-build.js'
import type { BidWorkloadSpec } from './lib/bid-workload.js'
import {
  type HarnessOptions,
  type Measurement,
  measure,
  measureIsolated,
  QUICK_OPTIONS,
  type Workload,
} from './lib/harness.js'
import type { RunOptions } from './lib/module.js'
import { qualityCostCases } from './lib/quality-cost.js'
import { type BenchResult, compared } from './lib/results.js'

/**
 * Decoders on generated events, each beside a baseline measured in the same run (interleaved):
 *   JSON impressions, array and NDJSON: decodeBody vs JSON.parse + ajv validator of the same schema
 *   CSV clicks: decodeBody vs csv-parse record by record + a mapper to the same objects (checked equal)
 *   Avro OCF bid requests: decodeBody (+ Confluent wire framing) vs avsc decoding the same file,
 *     each side in its own worker thread (see avroCases)
 *   Bids by schema version: this build vs the code before the OpenRTB 2.6 schema (bid v1) and the
 *     first v2 build, each an earlier commit compiled beside this one (see bidVersionCases)
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
  // unicode: false counts string lengths in UTF-16 units, as the normalizer does (ajv logs that
  // option as deprecated, hence no logger).
  const ajv = new Ajv({ unicode: false, allowUnionTypes: true, logger: false })
  return ajv.compile(avroToJsonSchema(EVENT_SCHEMAS[type].model))
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

  return results
}

// ---------------------------------------------------------------------------------------------
// JSON impressions → Avro (what the workers hand to Kafka): validated and encoded, per core

/**
 * The native transcoder (native/, simdjson On-Demand → Avro, no JS objects) and the JS path
 * (decodeJson + avsc) against the baseline a Node service would write: JSON.parse + the ajv
 * validator of jsonCases + avsc encoding each valid event (stamped) in the Confluent wire format.
 */
async function jsonAvroCases(h: HarnessOptions): Promise<BenchResult[]> {
  if (!nativeStatus().native) {
    process.stdout.write(
      `  native transcoder not loaded (${nativeStatus().reason}): json→avro cases skipped\n`,
    )
    return []
  }
  const events = generate('impression')
  const validate = ajvValidator('impression')
  const schema = EVENT_SCHEMAS.impression
  const ajvAvsc = (items: unknown[]): Buffer[] => {
    const out: Buffer[] = []
    for (const item of items) {
      if (!validate(item)) continue
      const e = item as Record<string, unknown>
      e.ingest_time = INGEST_TIME
      e.source = SOURCE
      out.push(encodeWire(schema, e))
    }
    return out
  }
  const encoded = (r: TranscodeResult): number => {
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.detail}`)
    if (r.rejects.length > 0) throw new Error(`rejected: ${r.rejects[0]!.reason}`)
    return r.count
  }
  const results: BenchResult[] = []
  for (const [label, encoding] of [
    ['array', 'json'],
    ['ndjson', 'ndjson'],
  ] as const) {
    const bodies = events.map((e) => encodeEvents('impression', e, encoding))
    const options = bodyOptions('impression', encoding)
    const ndjson = encoding === 'ndjson'
    const baseline = (body: Buffer): Buffer[] =>
      ajvAvsc(
        ndjson
          ? body
              .toString('utf8')
              .split('\n')
              .filter((l) => l !== '')
              .map((l) => JSON.parse(l) as unknown)
          : (JSON.parse(body.toString('utf8')) as unknown[]),
      )
    // Sanity: the three sides write the same bytes for every generated body.
    for (const body of bodies) {
      const native = transcodeJsonNative(body, ndjson, options)!
      const js = transcodeJsonJs(body, ndjson, options)
      const base = baseline(body)
      if (
        encoded(native) !== EVENTS_PER_BODY ||
        encoded(js) !== EVENTS_PER_BODY ||
        base.length !== EVENTS_PER_BODY
      )
        throw new Error(`json→avro ${label}: not every event encoded`)
      if (!valuesOf(native).equals(valuesOf(js)))
        throw new Error(`json→avro ${label}: native and JS values differ`)
      if (!valuesOf(native).equals(Buffer.concat(base)))
        throw new Error(`json→avro ${label}: native and baseline values differ`)
    }
    const next = rotating(bodies)
    const bytes = totalBytes(bodies)
    const [native, js, base] = await measure(
      [
        {
          name: 'native transcoder',
          events: EVENTS_PER_BODY,
          bytes,
          fn: () => encoded(transcodeJsonNative(next(), ndjson, options)!),
        },
        {
          name: 'JS path (decodeJson + avsc)',
          events: EVENTS_PER_BODY,
          bytes,
          fn: () => encoded(transcodeJsonJs(next(), ndjson, options)),
        },
        { name: 'JSON.parse + ajv + avsc', events: EVENTS_PER_BODY, bytes, fn: () => baseline(next()) },
      ],
      h,
    )
    const title = `json→avro ${label} impressions ×${EVENTS_PER_BODY}, validate+encode`
    results.push(...pair(title, native!, base!, false), ...pair(title, js!, base!))
    results.push(...pair(title, native!, js!, false))
  }
  return results
}

/** The accepted events' values, back to back (what Kafka gets). */
function valuesOf(r: TranscodeResult): Buffer {
  if (!r.ok) return Buffer.alloc(0)
  const parts: Buffer[] = []
  for (let i = 0; i < r.count; i++)
    parts.push(r.buffer.subarray(r.spans[i * SPAN + 1]!, r.spans[i * SPAN + 2]!))
  return Buffer.concat(parts)
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
    _unknown: null, // the click schema's slot for columns it does not name: none here
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

/** csv-parse's synchronous API with a per-record callback (on_record). */
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

const OCF_HEADER = avro.Type.forSchema(CONTAINER_HEADER_SCHEMA)
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

export type AvroSide = 'decode' | 'frame' | 'avsc' | 'blockDecoder'

const AVRO_SIDES: Record<AvroSide, string> = {
  decode: 'adgate decodeBody',
  frame: 'adgate decodeBody + wire framing',
  avsc: 'avsc Type.decode loop',
  blockDecoder: 'avsc BlockDecoder stream',
}

/** One side of the Avro case; a factory so measureIsolated can build it in its own worker. */
export function avroWorkload(side: AvroSide): Workload {
  const schema = EVENT_SCHEMAS.bid
  const bodies = generate('bid').map((e) => encodeEvents('bid', e, 'avro'))
  const options = bodyOptions('bid', 'avro')
  const next = rotating(bodies)
  const fns: Record<AvroSide, () => unknown> = {
    decode: () => decodeAll(next(), options),
    // What the gateway's workers do: splice the stamps into the writer's bytes when the schemas
    // match (they do here), else encode the decoded object.
    frame: () => {
      const result = decodeBody(next(), options)
      if (!result.ok) throw new Error(result.error.detail)
      const { events, records } = result
      const out = new Array<Buffer>(events.length)
      for (let i = 0; i < events.length; i++) {
        out[i] = records
          ? frameWithStamps(schema, records[i]!, options.ingestTime, options.source)
          : encodeWire(schema, events[i])
      }
      return out
    },
    avsc: () => avscDecodeFile(schema.type, next()),
    blockDecoder: () => avscBlockDecoder(next()),
  }
  return { name: AVRO_SIDES[side], events: EVENTS_PER_BODY, bytes: totalBytes(bodies), fn: fns[side] }
}

async function avroCases(h: HarnessOptions): Promise<BenchResult[]> {
  const schema = EVENT_SCHEMAS.bid
  const options = bodyOptions('bid', 'avro')
  for (const body of generate('bid').map((e) => encodeEvents('bid', e, 'avro'))) {
    const stamp = (v: unknown) => ({ ...(v as object), ingest_time: INGEST_TIME, source: SOURCE })
    const events = decodeAll(body, options)
    // As plain data: the decoder reads with avsc record classes of its own.
    const plain = (values: unknown[]) => JSON.parse(JSON.stringify(values)) as unknown
    deepStrictEqual(plain(events), plain(avscDecodeFile(schema.type, body).map(stamp)))
    if ((await avscBlockDecoder(body)).length !== events.length) throw new Error('BlockDecoder count differs')
  }
  // Each side in its own worker: in one isolate, avsc's shared readers would see both sides'
  // record classes and slow down for that reason alone (a worker decodes with one set).
  const sides: AvroSide[] = ['decode', 'frame', 'avsc', 'blockDecoder']
  const [decoded, withFraming, base, stream] = await measureIsolated(
    sides.map((side) => ({ module: import.meta.url, factory: 'avroWorkload', arg: side })),
    h,
  )
  // The same two in one thread, for the record.
  const [sharedDecoded, sharedBase] = await measure([avroWorkload('decode'), avroWorkload('avsc')], h)

  const title = `avro OCF bids ×${EVENTS_PER_BODY} (null codec)`
  const overhead = (m: Measurement, against: Measurement, suffix = ''): BenchResult => ({
    case: `${title}: ${m.name}${suffix}`,
    metric: 'overhead vs avsc',
    value: (against.eventsPerSec / m.eventsPerSec - 1) * 100,
    unit: '% time/event',
  })
  return [
    ...pair(`${title}, decode+validate`, decoded!, base!),
    overhead(decoded!, base!),
    ...pair(`${title}, decode+validate+frame`, withFraming!, base!, false),
    overhead(withFraming!, base!),
    ...single(`${title}: ${stream!.name}`, stream!),
    ...pair(`${title}, decode+validate, both in one isolate`, sharedDecoded!, sharedBase!, false),
    overhead(sharedDecoded!, sharedBase!, ', both in one isolate'),
  ]
}

// ---------------------------------------------------------------------------------------------
// Bids by schema version (issue 14: the OpenRTB 2.6 schema may cost at most 25 % of bid throughput)

/** The earlier code the current build is measured against, by commit. */
const BID_BASELINES = [
  // The last commit before schemas/bid.v2.avsc: bids were the flat v1 record.
  { name: 'bid v1 (cca86f1)', commit: 'cca86f1' },
  // bid v2 as first landed (avsc's generic unions, every JSON bid on the JS decoder).
  { name: 'bid v2 before tuning (da3906b)', commit: 'da3906b' },
] as const

const BID_WORKLOAD = new URL('./lib/bid-workload.js', import.meta.url).href
const UNIT_CPU = 'CPU-s per 10^6 events'

/**
 * Bid bodies of 1000 (Avro OCF, JSON array, NDJSON) decoded as the workers decode them, by this
 * build and by the earlier ones, each in a thread of its own and interleaved. Reported as
 * events/s and as CPU seconds per million events (on a shared machine the steadier of the two).
 */
async function bidVersionCases(h: HarnessOptions, options: RunOptions): Promise<BenchResult[]> {
  let roots: string[]
  try {
    roots = BID_BASELINES.map((b) => `${pathToFileURL(baselineBuild(b.commit, options)).href}/`)
  } catch (err) {
    process.stdout.write(
      `  earlier builds unavailable (${(err as Error).message.split('\n')[0]}): bid cases skipped\n`,
    )
    return []
  }
  const current = new URL('../', import.meta.url).href
  const results: BenchResult[] = []
  for (const encoding of ['avro', 'json', 'ndjson'] as const) {
    const specs: BidWorkloadSpec[] = [
      ...BID_BASELINES.map((b, i) => ({ name: b.name, root: roots[i]!, encoding })),
      { name: 'bid v3 (this build)', root: current, encoding },
    ]
    const [v1, before, now] = await measureIsolated(
      specs.map((arg) => ({ module: BID_WORKLOAD, factory: 'bidWorkload', arg })),
      h,
    )
    const title = `${encoding} bids ×${EVENTS_PER_BODY} by schema version, ${encoding === 'avro' ? 'decodeBody' : 'transcodeBody'}`
    results.push(
      ...pair(title, now!, v1!, false),
      cpuRow(title, now!, v1!),
      ...pair(title, before!, v1!, false),
      cpuRow(title, before!, v1!),
      ...pair(title, now!, before!, false),
      cpuRow(title, now!, before!),
      ...single(`${title}: ${v1!.name} (baseline)`, v1!),
      {
        case: `${title}: ${v1!.name} (baseline)`,
        metric: 'CPU',
        value: v1!.cpuSecondsPerMillion,
        unit: UNIT_CPU,
      },
    )
  }
  return results
}

/** CPU seconds per million events against the baseline's; ratio < 1 is cheaper. */
function cpuRow(title: string, candidate: Measurement, base: Measurement): BenchResult {
  return compared(
    `${title}: ${candidate.name} vs ${base.name}`,
    'CPU',
    UNIT_CPU,
    candidate.cpuSecondsPerMillion,
    base.cpuSecondsPerMillion,
  )
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

// The targets, checked against this run's figures (printed, not part of the results file).
const TARGETS: { label: string; case: string; metric: string; ok: (v: number) => boolean }[] = [
  {
    label: 'JSON array ≥ 1.5× JSON.parse + ajv',
    case: 'json array impressions',
    metric: 'ratio',
    ok: (v) => v >= 1.5,
  },
  {
    label: 'NDJSON ≥ 1.5× JSON.parse + ajv',
    case: 'ndjson impressions',
    metric: 'ratio',
    ok: (v) => v >= 1.5,
  },
  {
    label: 'JSON→Avro native ≥ 5× JSON.parse + ajv + avsc',
    case: 'json→avro array impressions',
    metric: 'ratio',
    ok: (v) => v >= 5,
  },
  {
    label: 'NDJSON→Avro native ≥ 5× JSON.parse + ajv + avsc',
    case: 'json→avro ndjson impressions',
    metric: 'ratio',
    ok: (v) => v >= 5,
  },
  { label: 'CSV ≥ 3× csv-parse', case: 'csv clicks', metric: 'ratio', ok: (v) => v >= 3 },
  { label: 'Avro: validation adds ≤ 20%', case: 'avro OCF bids', metric: 'overhead', ok: (v) => v <= 20 },
  {
    label: 'Avro: validation + wire framing add ≤ 20%',
    case: 'avro OCF bids',
    metric: 'framing',
    ok: (v) => v <= 20,
  },
  // Issue 14: the OpenRTB 2.6 bid schema costs at most 25 % of bid throughput against bid v1.
  ...(['avro', 'json', 'ndjson'] as const).flatMap((encoding) => [
    {
      label: `${encoding} bids v3 ≥ 0.75× v1, events/s`,
      case: `${encoding} bids`,
      metric: 'ratio',
      ok: (v: number) => v >= 0.75,
    },
    {
      label: `${encoding} bids v3 ≥ 0.75× v1, per CPU-s`,
      case: `${encoding} bids`,
      metric: 'cpu',
      ok: (v: number) => v >= 0.75,
    },
  ]),
]

function printTargets(results: readonly BenchResult[]): void {
  process.stdout.write('\ntargets (per core):\n')
  for (const t of TARGETS) {
    let value: number | undefined
    if (t.metric === 'ratio' || t.metric === 'cpu') {
      const ratio = results.find(
        (r) =>
          r.case.startsWith(t.case) &&
          r.metric === (t.metric === 'cpu' ? 'CPU' : 'events/s') &&
          r.ratio !== undefined,
      )?.ratio
      // CPU per event against the baseline's, as a throughput ratio: 1 / (CPU ratio).
      value = t.metric === 'cpu' && ratio !== undefined ? 1 / ratio : ratio
    } else {
      const framing = t.metric === 'framing'
      value = results.find(
        (r) =>
          r.case.startsWith(t.case) &&
          r.metric === 'overhead vs avsc' &&
          r.case.endsWith('framing') === framing &&
          !r.case.includes('one isolate'),
      )?.value
    }
    const shown =
      value === undefined
        ? 'n/a'
        : t.metric === 'ratio' || t.metric === 'cpu'
          ? `${value.toFixed(2)}×`
          : `${value.toFixed(1)}%`
    const verdict = value === undefined ? '' : t.ok(value) ? 'met' : 'NOT met'
    process.stdout.write(`  ${t.label.padEnd(44)} ${shown.padStart(8)}  ${verdict}\n`)
  }
}

export async function run(options: RunOptions = { quick: false }): Promise<BenchResult[]> {
  const h: HarnessOptions = options.quick ? QUICK_OPTIONS : {}
  process.stdout.write('  single-threaded: every figure is per core\n')
  const results = [
    ...(await jsonCases(h)),
    ...(await jsonAvroCases(h)),
    ...(await csvCases(h)),
    ...(await avroCases(h)),
    ...(await bidVersionCases(h, options)),
    // Data-quality rules on the workers' task path (issue 9): target < 15 % of throughput.
    ...(await qualityCostCases(h)),
  ]
  printTargets(results)
  return results
}
