import { pathToFileURL } from 'node:url'
import { gzipSync } from 'node:zlib'
import avro from 'avsc'
import { writeContainerHeader } from '../decoders/avro-container.js'
import type { EventType } from '../events/catalog.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import { CONTENT_TYPE } from '../generator/encode.js'
import { generateEvents } from '../generator/funnel.js'

/**
 * The noisy neighbour of loadtest/noisy-neighbour.ts, as a process of its own (a client of its own,
 * not a second user of the valid client's event loop): `node noisy-client.js <url> <seconds>
 * <api key> <first>` builds its bodies, prints `ready`, and on a line on stdin posts, one after another
 * for that long, the worst bodies it can build for each decoder (from the `first`-th on, so
 * successive runs go round all of them); then prints what each kind got
 * ({kind: {status: count}}) as one JSON line. (Building the bodies first keeps its own start-up
 * out of the measured seconds.)
 */
const SYNC = Buffer.alloc(16)

/** An Avro container with this writer schema and no blocks. */
const containerHeader = (schema: unknown) => writeContainerHeader(schema, 'null', SYNC)

const LONG = avro.Type.forSchema('long')

/**
 * An Avro container of one `type` event whose writer schema puts an array of nulls (items of no
 * bytes) before it, in `blocks` blocks of `items` each, then a string of `padBytes` for them to
 * claim. The neighbour's: 20,000 blocks each claiming the 100 KB string after them, 2 billion items
 * for avsc to read, minutes of a thread before decoders/avro-bounds.ts bounded all items by the
 * block's bytes (test/decoders/avro-bounds.test.ts builds fair and hostile ones with it too).
 */
export function nullsClaimingBytes(
  type: EventType,
  { blocks = 20_000, items = 100_000, padBytes = 100_000 } = {},
): Buffer {
  const json = EVENT_SCHEMAS[type].json as unknown as { fields: unknown[] }
  const schema = {
    ...json,
    fields: [
      { name: 'nulls', type: { type: 'array', items: 'null' }, default: [] },
      { name: 'pad', type: 'string', default: '' },
      ...json.fields,
    ],
  }
  const writer = avro.Type.forSchema(schema as avro.Schema)
  const [event] = generateEvents(type, 1, 1)
  const rest = writer.toBuffer({ ...event, nulls: [], pad: '' }).subarray(2) // after the two empty fields
  const record = Buffer.concat([
    ...Array.from({ length: blocks }, () => LONG.toBuffer(items)),
    LONG.toBuffer(0),
    LONG.toBuffer(padBytes),
    Buffer.alloc(padBytes, 'a'),
    rest,
  ])
  return Buffer.concat([
    containerHeader(schema),
    LONG.toBuffer(1),
    LONG.toBuffer(record.length),
    record,
    SYNC,
  ])
}

interface Hostile {
  readonly name: string
  readonly path: string
  readonly headers: Record<string, string>
  /** A new body each time (distinct schemas defeat the writer-schema cache). */
  readonly body: (i: number) => Buffer
}

/** The worst bodies per decoder, each well under the 5 MiB default body limit. */
export function hostileBodies(): Hostile[] {
  const quotedRow = `${Array.from({ length: 150_000 }, () => '"x"').join(',')},a"b`
  const csv = Buffer.from(`event_id,click_id\n${quotedRow}\n`)
  const ndjson = Buffer.from('{}\n'.repeat(10_000))
  const nested = Buffer.from(`${'['.repeat(200_000)}${']'.repeat(200_000)}`)
  const bomb = gzipSync(Buffer.alloc(64 * 2 ** 20, 32))
  const nulls = nullsClaimingBytes('impression')
  // adgate's record name and as many fields as a writer may have: compiled before it fails.
  const wideWriter = (i: number) =>
    containerHeader({
      type: 'record',
      name: 'Impression',
      fields: Array.from({ length: 90 }, (_, f) => ({
        name: `f${i}_${f}`,
        type: ['null', 'string'],
        default: null,
      })),
    })
  return [
    hostile('csv: 150k quoted cells, a stray quote', '/v1/clicks', 'csv', () => csv),
    hostile('avro: a new 90-field writer schema each time', '/v1/impressions', 'avro', wideWriter),
    hostile(
      'avro: an array of nulls claiming the same bytes 20k times',
      '/v1/impressions',
      'avro',
      () => nulls,
    ),
    hostile('ndjson: 10k invalid events', '/v1/impressions', 'ndjson', () => ndjson),
    hostile('json: 200k nested arrays', '/v1/impressions', 'json', () => nested),
    hostile('gzip bomb: 64 MiB of spaces', '/v1/impressions', 'json', () => bomb, {
      'content-encoding': 'gzip',
    }),
  ]
}

function hostile(
  name: string,
  path: string,
  encoding: keyof typeof CONTENT_TYPE,
  body: (i: number) => Buffer,
  headers: Record<string, string> = {},
): Hostile {
  return { name, path, headers: { 'content-type': CONTENT_TYPE[encoding], ...headers }, body }
}

async function main(): Promise<void> {
  const [url, seconds, key, first] = process.argv.slice(2) as [string, string, string, string]
  const hostile = hostileBodies()
  for (const [i, h] of hostile.entries()) h.body(i) // built once before the go
  process.stdout.write('ready\n')
  await new Promise((resolve) => process.stdin.once('data', resolve))
  process.stdin.pause()
  const counts: Record<string, Record<string, number>> = {}
  const until = Date.now() + Number(seconds) * 1000
  for (let i = Number(first); Date.now() < until; i++) {
    const h = hostile[i % hostile.length]!
    const res = await fetch(`${url}${h.path}`, {
      method: 'POST',
      headers: { ...h.headers, 'x-api-key': key },
      body: h.body(i),
    }).catch(() => null)
    const status = res === null ? 'error' : String(res.status)
    await res?.arrayBuffer()
    const kind = counts[h.name] ?? {}
    counts[h.name] = kind
    kind[status] = (kind[status] ?? 0) + 1
  }
  process.stdout.write(`${JSON.stringify(counts)}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
