import { gzipSync } from 'node:zlib'
import autocannon from 'autocannon'
import avro from 'avsc'
import { bodies } from '../bench/lib/servers.js'
import { CONTAINER_HEADER_SCHEMA } from '../decoders/avro-container.js'
import { CONTENT_TYPE } from '../generator/encode.js'

/**
 * Issue 15's noisy neighbour: one client posts valid batches as fast as it can while another
 * posts, one after another, the most expensive bodies we can build for each decoder. The valid
 * client's throughput with the neighbour is compared with its throughput alone (same gateway,
 * measured just before), and every answer it got must be a 2xx.
 */
export interface NoisyResult {
  readonly alone_events_per_s: number
  readonly with_neighbour_events_per_s: number
  readonly ratio: number
  /** Answers to the valid client that were not 2xx, by status (must stay empty). */
  readonly valid_non2xx: Record<string, number>
  /** What the neighbour's bodies got, by body kind and status. */
  readonly neighbour: Record<string, Record<string, number>>
  readonly result: autocannon.Result
}

const EVENTS_PER_REQUEST = 100
const HEADER = avro.Type.forSchema(CONTAINER_HEADER_SCHEMA)

/** An Avro container with this writer schema and no blocks. */
function containerHeader(schema: unknown): Buffer {
  return HEADER.toBuffer({
    magic: Buffer.from('Obj\x01', 'latin1'),
    meta: { 'avro.schema': Buffer.from(JSON.stringify(schema)) },
    sync: Buffer.alloc(16),
  })
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
  return [
    {
      name: 'csv: 150k quoted cells, a stray quote',
      path: '/v1/clicks',
      headers: { 'content-type': CONTENT_TYPE.csv },
      body: () => csv,
    },
    {
      name: 'avro: a new 256-field writer schema each time',
      path: '/v1/impressions',
      headers: { 'content-type': CONTENT_TYPE.avro },
      body: (i) =>
        containerHeader({
          type: 'record',
          name: `Wide${i}`,
          fields: Array.from({ length: 250 }, (_, f) => ({
            name: `f${f}`,
            type: ['null', 'string'],
            default: null,
          })),
        }),
    },
    {
      name: 'ndjson: 10k invalid events',
      path: '/v1/impressions',
      headers: { 'content-type': CONTENT_TYPE.ndjson },
      body: () => ndjson,
    },
    {
      name: 'json: 200k nested arrays',
      path: '/v1/impressions',
      headers: { 'content-type': CONTENT_TYPE.json },
      body: () => nested,
    },
    {
      name: 'gzip bomb: 64 MiB of spaces',
      path: '/v1/impressions',
      headers: { 'content-type': CONTENT_TYPE.json, 'content-encoding': 'gzip' },
      body: () => bomb,
    },
  ]
}

async function valid(url: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/v1/impressions`,
    method: 'POST',
    connections: 16,
    duration: seconds,
    headers: { 'content-type': CONTENT_TYPE.json },
    requests: bodies('impression', 'json', 20, EVENTS_PER_REQUEST).map((body) => ({ method: 'POST', body })),
  })
}

export async function noisyNeighbour(url: string, seconds: number): Promise<NoisyResult> {
  const alone = await valid(url, seconds)
  const hostile = hostileBodies()
  const neighbour: Record<string, Record<string, number>> = {}
  let stop = false
  const noisy = (async () => {
    for (let i = 0; !stop; i++) {
      const h = hostile[i % hostile.length]!
      const res = await fetch(`${url}${h.path}`, {
        method: 'POST',
        headers: h.headers,
        body: h.body(i),
      }).catch(() => null)
      const status = res === null ? 'error' : String(res.status)
      await res?.arrayBuffer()
      const counts = neighbour[h.name] ?? {}
      neighbour[h.name] = counts
      counts[status] = (counts[status] ?? 0) + 1
    }
  })()
  const withNeighbour = await valid(url, seconds)
  stop = true
  await noisy
  const perSecond = (r: autocannon.Result) => (r['2xx'] / seconds) * EVENTS_PER_REQUEST
  const valid_non2xx: Record<string, number> = {}
  for (const [code, n] of Object.entries(withNeighbour.statusCodeStats ?? {}))
    if (!code.startsWith('2') && (n.count ?? 0) > 0) valid_non2xx[code] = n.count ?? 0
  if (withNeighbour.errors > 0) valid_non2xx.errors = withNeighbour.errors
  return {
    alone_events_per_s: Math.round(perSecond(alone)),
    with_neighbour_events_per_s: Math.round(perSecond(withNeighbour)),
    ratio: perSecond(withNeighbour) / perSecond(alone),
    valid_non2xx,
    neighbour,
    result: withNeighbour,
  }
}
