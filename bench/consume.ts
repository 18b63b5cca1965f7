import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { sourceTopics, topicNames } from '../correlator/topics.js'
import { baselineBuild } from './lib/baseline-build.js'
import { funnelLogs, PARTITIONS } from './lib/correlator-workload.js'
import { createFunnelTopics, dropBenchTopics, funnelProducer, produceRecords } from './lib/funnel-kafka.js'
import type { RunOptions } from './lib/module.js'
import type { BenchResult } from './lib/results.js'
import { median } from './lib/stats.js'

export const description =
  "the correlator's Kafka consumer alone, in one run: this build's KafkaSource beside an earlier commit's (default the last one on kafkajs), same LZ4 topics, a fresh group per run, runs interleaved"

const BROKERS = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',')
/**
 * The last commit whose correlator consumed with kafkajs (no longer a dependency: its baseline
 * build installs it, see lib/baseline-build.ts). BENCH_CONSUME_BASELINE picks another.
 */
const KAFKAJS_COMMIT = 'c9b6305'
const here = import.meta.dirname

interface Run {
  records: number
  seconds: number
  cpuSeconds: number
}

export async function run({ quick }: RunOptions): Promise<BenchResult[]> {
  const baselineCommit = process.env.BENCH_CONSUME_BASELINE ?? KAFKAJS_COMMIT
  const sides = [
    {
      name: `${baselineCommit} (baseline)`,
      url: pathToFileURL(join(baselineBuild(baselineCommit, { quick }), 'correlator', 'kafka-source.js'))
        .href,
    },
    { name: 'this build', url: pathToFileURL(join(here, '..', 'correlator', 'kafka-source.js')).href },
  ]
  const prefix = `bench${randomBytes(3).toString('hex')}.`
  const total = await fill(prefix, quick ? 20_000 : 100_000)
  const runs = quick ? 1 : 5
  const results = sides.map(() => [] as Run[])
  for (let i = 0; i < runs; i++) {
    // Interleaved, the order alternating, so drift on the shared machine hits both alike.
    const order = i % 2 === 0 ? [0, 1] : [1, 0]
    for (const s of order) {
      const r = await consumeOnce(sides[s]!.url, prefix, `${prefix}g${i}-${s}`, total)
      process.stderr.write(
        `  ${sides[s]!.name}: ${Math.round(r.records / r.seconds)} records/s, ${((r.cpuSeconds / r.records) * 1e6).toFixed(2)} CPU-s/M\n`,
      )
      results[s]!.push(r)
    }
  }
  await dropBenchTopics(BROKERS, prefix)
  const figures = results.map((rs) => ({
    perSecond: median(rs.map((r) => r.records / r.seconds)),
    cpuPerMillion: median(rs.map((r) => (r.cpuSeconds / r.records) * 1e6)),
  }))
  const [base, mine] = figures as [(typeof figures)[0], (typeof figures)[0]]
  const label = `${total} records (${PARTITIONS} partitions × ${sourceTopics(topicNames()).length} topics, LZ4), median of ${runs}`
  return [
    {
      case: `${label}: ${sides[1]!.name} vs ${sides[0]!.name}`,
      metric: 'records/s',
      value: Math.round(mine.perSecond),
      unit: 'records/s',
      baseline: Math.round(base.perSecond),
      ratio: mine.perSecond / base.perSecond,
    },
    {
      case: `${label}: ${sides[1]!.name} vs ${sides[0]!.name}`,
      metric: 'CPU per 10^6 records',
      value: Number(mine.cpuPerMillion.toFixed(2)),
      unit: 'CPU-s',
      baseline: Number(base.cpuPerMillion.toFixed(2)),
      ratio: mine.cpuPerMillion / base.cpuPerMillion,
    },
  ]
}

/** The correlator bench's funnel, as the gateway writes it (acks=all, LZ4 batches); returns the record count. */
async function fill(prefix: string, bids: number): Promise<number> {
  await createFunnelTopics(BROKERS, prefix)
  const producer = funnelProducer(BROKERS)
  let total = 0
  try {
    for (const log of funnelLogs(bids, 11).values()) {
      await produceRecords(producer, log, prefix)
      total += log.length
    }
  } finally {
    await producer.close()
  }
  return total
}

function consumeOnce(url: string, prefix: string, group: string, total: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(here, 'lib', 'consume-child.js'), url, BROKERS.join(','), prefix, group, String(total)],
      { timeout: 300_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`consume child failed: ${stderr}`, { cause: err }))
        else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Run)
      },
    )
  })
}
