// adgate's correlator as the bench runs it against the Kafka Streams peer (bench/lib/streams-peer.ts):
// `<brokers> <prefix> <run> <duckdb file>` reads the event topics `<prefix>adgate.*` from offset 0
// as consumer group `<prefix><run>`, re-keys through its own topics (`<prefix><run>.adgate.correlator.*`)
// and writes DuckDB, with `adgate correlator`'s settings. Prints FIRST when the first batch is
// handed to the correlator and DONE {json} once every input record is stored (positions at the
// ends, re-keyed topics included) and the correlator has stopped; then waits for stdin to close,
// so the bench can read its CPU and peak RSS from /proc. With a fifth argument, writes the event id
// of every attributed conversion to that file (`conversion <id>` lines, as the Streams peer's dump).

import { writeFileSync } from 'node:fs'
import { Consumer } from '@platformatic/kafka'
import { Correlator } from '../../correlator/correlator.js'
import { KafkaRekeyProducer, KafkaSource } from '../../correlator/kafka-source.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import type { SourceHandlers } from '../../correlator/source.js'
import type { Storage, WriteBatch } from '../../correlator/storage.js'
import { inputTopics, sourceTopics, type TopicNames, topicNames } from '../../correlator/topics.js'
import { DuckDbStorage } from '../../storage/duckdb.js'

const [brokerList, prefix, run, file, dump] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string | undefined,
]
const brokers = brokerList.split(',')
const source0 = topicNames(prefix)
// Fresh re-keyed topics per run: several runs read the same event topics.
const names: TopicNames = {
  ...source0,
  rekeyedImpressions: `${prefix}${run}.adgate.correlator.impressions`,
  rekeyedClicks: `${prefix}${run}.adgate.correlator.clicks`,
}
const topics = inputTopics(true, names)

/** Next offsets the correlator has stored, by topic:partition. */
const stored = new Map<string, bigint>()

/** DuckDB, watched: every atomic write carries the input positions it makes durable. */
class Watched implements Storage {
  readonly kind: string
  constructor(private readonly inner: Storage) {
    this.kind = inner.kind
  }
  load: Storage['load'] = (p, t) => this.inner.load(p, t)
  stats: Storage['stats'] = (q) => this.inner.stats(q)
  close: Storage['close'] = () => this.inner.close()
  async write(batch: WriteBatch): Promise<void> {
    await this.inner.write(batch)
    for (const p of batch.positions) stored.set(`${p.topic}:${p.partition}`, BigInt(p.offset))
  }
}

let first = true
class Source extends KafkaSource {
  override start(h: SourceHandlers): Promise<void> {
    return super.start({
      ...h,
      onBatch: (records) => {
        if (first) {
          first = false
          process.stdout.write('FIRST\n')
        }
        return h.onBatch(records)
      },
    })
  }
}

/** Asks the brokers for the topics' end offsets (it joins no group). */
const offsets = new Consumer({
  clientId: 'bench',
  groupId: `${prefix}${run}-ends`,
  bootstrapBrokers: brokers,
})
async function ends(list: string[]): Promise<Map<string, bigint>> {
  const m = new Map<string, bigint>()
  for (const [t, partitions] of await offsets.listOffsets({ topics: list }))
    for (const [p, end] of partitions.entries()) m.set(`${t}:${p}`, end)
  return m
}
function reached(e: Map<string, bigint>): boolean {
  for (const [k, end] of e) if (end > 0n && (stored.get(k) ?? 0n) < end) return false
  return true
}
// The event topics are written before this starts: their ends are fixed.
const sourceEnds = await ends(sourceTopics(names))
let records = 0n
for (const e of sourceEnds.values()) records += e

const duckdb = await DuckDbStorage.open(file)
const storage = new Watched(duckdb)
const log = (msg: string) => process.stderr.write(`correlator-peer-child: ${msg}\n`)
const source = new Source({
  brokers,
  clientId: 'bench',
  groupId: `${prefix}${run}`,
  topics,
  names,
  onError: (err: unknown, msg: string) => log(`kafka: ${msg}: ${String(err)}`),
})
const producer = new KafkaRekeyProducer(brokers, 'bench')
// Declaration mirrored in test/correlator/kafka-retention.test.ts: both build the correlator as the CLI does.
const c = new Correlator(
  {
    rules: DEFAULT_RULES,
    storage,
    source,
    producer,
    names,
    // As `adgate correlator` runs (cli/correlator.ts, config defaults).
    checkpointMs: 5000,
    idleMs: 60_000,
    writeEveryRecords: 20_000,
    lingerMs: 200,
    onWarn: (msg) => log(msg),
  },
  await source.partitions(),
)
// The largest RSS seen (sampled), with what made it up then: the bench reports the peak.
let peak = process.memoryUsage()
const sampler = setInterval(() => {
  const m = process.memoryUsage()
  if (m.rss > peak.rss) peak = m
}, 100)
const running = c.start()
running.catch((err: unknown) => {
  process.stderr.write(`correlator-peer-child: ${(err as Error).stack}\n`)
  process.exit(1)
})
// Done: every event record stored, then every re-keyed record appended so far stored too (the
// forwarded records of a batch are durable before its write, so nothing can still come).
const progress = setInterval(() => {
  let n = 0n
  for (const v of stored.values()) n += v
  log(`${n} of ${records} event and re-keyed records stored`)
}, 10_000)
for (;;) {
  await new Promise((r) => setTimeout(r, 20))
  if (!reached(sourceEnds)) continue
  if (reached(await ends([names.rekeyedImpressions, names.rekeyedClicks]))) break
}
clearInterval(progress)
clearInterval(sampler)
// Where the peak RSS goes (the bench reads VmHWM): the JS heap, or native memory (DuckDB, buffers).
const mb = (m: NodeJS.MemoryUsage) =>
  `rss ${m.rss >> 20}, heap used ${m.heapUsed >> 20} of ${m.heapTotal >> 20}, external ${m.external >> 20}, array buffers ${m.arrayBuffers >> 20}`
log(`memory (MB) at the end: ${mb(process.memoryUsage())}; at the largest RSS sampled: ${mb(peak)}`)
const duckMemory = await duckdb.query(
  'SELECT tag, memory_usage_bytes >> 20 AS mb FROM duckdb_memory() WHERE memory_usage_bytes >= 1 << 20',
)
log(`DuckDB's own memory at the end (MB): ${duckMemory.map((r) => `${r.tag} ${r.mb}`).join(', ')}`)
const totals: Record<string, number> = {}
for (const row of await storage.stats({ granularity: 'hour' }))
  for (const k of ['bids', 'wins', 'impressions', 'clicks', 'clicks_valid', 'conversions'] as const)
    totals[k] = (totals[k] ?? 0) + row[k]
await c.stop()
if (dump !== undefined) {
  const rows = await duckdb.query('SELECT event_id FROM conversions WHERE attributed ORDER BY event_id')
  writeFileSync(dump, rows.map((r) => `conversion ${r.event_id}\n`).join(''))
}
await producer.close()
await storage.close()
await offsets.close()
process.stdout.write(`DONE ${JSON.stringify({ records: Number(records), ...totals })}\n`)
process.stdin.resume()
process.stdin.on('end', () => process.exit(0))
