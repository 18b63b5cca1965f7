import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Admin, ProduceAcks, Producer } from '@platformatic/kafka'
import { EVENT_INFO } from '../events/catalog.js'
import { CONTENT_TYPE } from '../generator/encode.js'
import { BatchSink } from '../kafka/batch-sink.js'
import { RecordBatchBuilder } from '../kafka/protocol/record-batch.js'
import type { RunOptions } from './lib/module.js'
import type { BenchResult } from './lib/results.js'
// Declaration mirrored in bench/gateway.ts and bench/strict-http.ts: each bench starts the same servers.
import {
  BROKERS,
  bodies,
  cpuSeconds,
  ensureKafka,
  load,
  type Server,
  startGateway,
  stop,
} from './lib/servers.js'
import { median } from './lib/stats.js'

export const description =
  "the producer stack, measured in one run: platformatic's own Producer vs adgate's worker-encoded batches over platformatic connections; with BENCH_BASELINE_DIR=<old checkout> also the gateway end to end, old vs new"

const RECORDS_PER_SEND = 500
const IN_FLIGHT = 8
const EVENTS_PER_REQUEST = 100

/** ~450-byte JSON-like values (compressible as real events are), distinct per record. */
function values(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    Buffer.from(
      JSON.stringify({
        impression_id: `imp-${i}-${randomUUID()}`,
        auction_id: `auc-${i % 9973}`,
        campaign_id: `cmp-${i % 97}`,
        event_time: 1_765_000_000_000 + i,
        cost_micros: (i * 37) % 100_000,
        user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0',
        page_url: `https://publisher.example/articles/${i % 1000}?utm_source=adgate&utm_medium=display`,
        ext: { viewability: (i % 100) / 100, slot: `top-${i % 4}` },
      }),
    ),
  )
}

/** One drive's throughput and cost. */
interface Drive {
  eventsPerSec: number
  cpuPerM: number
}

/** Runs `send(chunk)` for every chunk of `records`, `IN_FLIGHT` at a time; returns events/s and CPU-s per million. */
async function drive(
  records: number,
  send: (from: number, to: number) => Promise<unknown>,
  inFlight: number,
): Promise<Drive> {
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let next = 0
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < records) {
        const from = next
        next = Math.min(records, next + RECORDS_PER_SEND)
        await send(from, next)
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { eventsPerSec: records / seconds, cpuPerM: ((cpu.user + cpu.system) / 1e6 / records) * 1e6 }
}

async function producerOnly(quick: boolean): Promise<BenchResult[]> {
  const records = quick ? 20_000 : 100_000
  const rounds = quick ? 1 : 3
  const partitions = 4
  const topic = `adgate.bench-producer-${randomUUID()}`
  const admin = new Admin({ clientId: 'adgate-bench', bootstrapBrokers: [BROKERS] })
  await admin.createTopics({ topics: [topic], partitions, replicas: 1 })
  const data = values(records)
  const producer = new Producer({
    clientId: 'adgate-bench',
    bootstrapBrokers: [BROKERS],
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression: 'lz4',
  })
  const sink = new BatchSink({
    brokers: [BROKERS],
    clientId: 'adgate-bench',
    topics: [topic],
    connection: {},
    ackTimeoutMs: 30_000,
    maxInFlight: 5,
    maxPendingBytes: 1 << 30,
    logger: { info() {}, warn() {}, error() {}, debug() {} } as never,
  })
  await sink.connect()
  const builder = new RecordBatchBuilder()
  const headers = Buffer.from([0])
  const platformatic: Drive[] = []
  const ours: Drive[] = []
  try {
    for (let r = 0; r < rounds; r++) {
      const sides = [
        () =>
          drive(
            records,
            (from, to) =>
              producer.send({
                messages: data
                  .slice(from, to)
                  .map((value, i) => ({ topic, partition: (from + i) % partitions, value })),
              }),
            // Its idempotent producer fails with OUT_OF_ORDER_SEQUENCE_NUMBER when sends overlap
            // (seen here with 8 in flight): one send at a time is how it stays correct.
            1,
          ).then((x) => platformatic.push(x)),
        () =>
          drive(
            records,
            (from, to) => {
              // The gateway's workers do this part off the main thread; here it is counted in full.
              for (let i = from; i < to; i++) builder.add(topic, i % partitions, null, data[i]!, headers)
              const out = builder.finish(Date.now())
              return sink.send({ buffer: Buffer.from(out.buffer), batches: out.batches })
            },
            IN_FLIGHT,
          ).then((x) => ours.push(x)),
      ]
      // Alternate which side goes first.
      for (let k = 0; k < sides.length; k++) await sides[(r + k) % sides.length]!()
    }
  } finally {
    await producer.close()
    await sink.close()
    await admin.deleteTopics({ topics: [topic] }).catch(() => {})
    await admin.close()
  }
  const name = `${RECORDS_PER_SEND} records/send (platformatic: 1 in flight, adgate: ${IN_FLIGHT}), lz4, acks=all, idempotent`
  const row = (metric: string, unit: string, f: (x: Drive) => number): BenchResult => {
    const value = median(ours.map(f))
    const baseline = median(platformatic.map(f))
    return {
      case: `producer only (${name}): adgate batches over platformatic connections vs platformatic Producer`,
      metric,
      value,
      unit,
      baseline,
      ratio: value / baseline,
    }
  }
  return [
    row('events_per_s', 'events/s', (x) => x.eventsPerSec),
    row('cpu_s_per_M', 'CPU-s', (x) => x.cpuPerM),
  ]
}

/** The gateway at `dist` (this checkout's, or the baseline's), one decode worker. */
function gatewayFrom(root: string): Promise<Server> {
  const env = { ADGATE_WORKERS: '1', ADGATE_SPOOL_MAX_BYTES: '0' }
  return root === '' ? startGateway(env) : startGateway({ ...env, ADGATE_DATA_DIR: join(root, 'data') }, root)
}

async function gatewayOldVsNew(baselineRoot: string, quick: boolean): Promise<BenchResult[]> {
  const seconds = quick ? 3 : 8
  const runs = quick ? 1 : 3
  const servers = { old: await gatewayFrom(baselineRoot), new: await gatewayFrom('') }
  const impressions = bodies('impression', 'json', 50, EVENTS_PER_REQUEST)
  const rate: Record<'old' | 'new', number[]> = { old: [], new: [] }
  const cpu: Record<'old' | 'new', number[]> = { old: [], new: [] }
  try {
    for (let i = 0; i < runs; i++) {
      const order: ('old' | 'new')[] = i % 2 === 0 ? ['old', 'new'] : ['new', 'old']
      for (const side of order) {
        const s = servers[side]
        const cpu0 = cpuSeconds(s.child.pid!)
        const r = await load({
          url: `http://127.0.0.1:${s.port}/v1/${EVENT_INFO.impression.route}`,
          contentType: CONTENT_TYPE.json,
          bodies: impressions,
          eventsPerRequest: EVENTS_PER_REQUEST,
          seconds,
          connections: 64,
        })
        if (r.non2xx > 0 || r.errors > 0)
          throw new Error(`${side}: non-2xx or errors: ${r.non2xx} / ${r.errors}`)
        rate[side].push(r.eventsPerSec)
        cpu[side].push(((cpuSeconds(s.child.pid!) - cpu0) / (r.eventsPerSec * seconds)) * 1e6)
      }
    }
  } finally {
    await Promise.all([stop(servers.old), stop(servers.new)])
  }
  const c =
    'gateway end to end, impressions json ×100/request, closed loop, 1 worker: this checkout vs BENCH_BASELINE_DIR'
  return [
    {
      case: c,
      metric: 'events_per_s',
      value: median(rate.new),
      unit: 'events/s',
      baseline: median(rate.old),
      ratio: median(rate.new) / median(rate.old),
    },
    {
      case: c,
      metric: 'cpu_s_per_M',
      value: median(cpu.new),
      unit: 'CPU-s',
      baseline: median(cpu.old),
      ratio: median(cpu.new) / median(cpu.old),
    },
  ]
}

export async function run(options: RunOptions): Promise<BenchResult[]> {
  ensureKafka()
  const results = await producerOnly(options.quick)
  const baseline = process.env.BENCH_BASELINE_DIR
  if (baseline && existsSync(join(baseline, 'dist', 'cli', 'main.js')))
    results.push(...(await gatewayOldVsNew(baseline, options.quick)))
  else
    process.stdout.write(
      'BENCH_BASELINE_DIR unset (a built checkout of the previous code): gateway old-vs-new skipped\n',
    )
  return results
}
