import { randomUUID } from 'node:crypto'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { threadCpuMs } from '../decoders/cpu-clock.js'
import { type BatchSet, BatchSink } from '../kafka/batch-sink.js'
import { encodeHeaders, RecordBatchBuilder } from '../kafka/protocol/record-batch.js'
import { AnsweringCluster } from './lib/answering-cluster.js'
import type { RunOptions } from './lib/module.js'
import type { BenchResult } from './lib/results.js'
import { median } from './lib/stats.js'

export const description =
  "the Kafka produce stage at a low rate: BatchSink's main-thread CPU per request of 100 impressions (4 batches, a Produce request each) at 222 requests/s against an in-process broker, this checkout vs BENCH_BASELINE_DIR's kafka/, interleaved rounds"

/**
 * What the sink and @platformatic/kafka spend per request where a request is alone in its
 * Produce request: the gateway at 22,200 events/s (the peers bench's 50 % rate) sends 222
 * requests/s, each one's 4 batches (100 impressions keyed over 4 partitions, as the workers
 * encode them) in a Produce request of its own (README "Where the CPU goes now"). Here the sink
 * gets those sets at that pace, with the gateway's settings (5 ms linger, 8 in flight), and the
 * main thread's CPU time is divided by the requests. The broker is in process and answers at once
 * (bench/lib/answering-cluster.ts): no socket, so the kernel's share, which varies with the load
 * of a shared box far more than this code's, stays out, and what is left is the JS of the sink,
 * the request and response codecs and the library's framing, over a floor both sides pay alike:
 * the event loop's wake-ups (pacing, linger timer, answer), 150-250 µs a request on this box. The baseline is another build's kafka/ (BENCH_BASELINE_DIR) in the same process, on the
 * same Cluster (kafka/cluster.ts of this checkout), so the two take turns, round after round.
 */
const RATE = Number(process.env.BENCH_PRODUCE_STAGE_RATE ?? 222)
const EVENTS = 100
const PARTITIONS = 4
/** Distinct sets cycled through (a set's buffer is stamped when sent: none is reused while queued). */
const SETS = 64

type SinkClass = typeof BatchSink

function requestSets(topic: string): BatchSet[] {
  const headers = encodeHeaders({ 'adgate.source': 'bench', 'adgate.encoding': 'json' })
  const builder = new RecordBatchBuilder()
  return Array.from({ length: SETS }, (_, n) => {
    for (let i = 0; i < EVENTS; i++) {
      const value = {
        impression_id: `imp-${n}-${i}-${randomUUID()}`,
        auction_id: `auc-${(n * EVENTS + i) % 9973}`,
        campaign_id: `cmp-${i % 97}`,
        event_time: 1_765_000_000_000 + i,
        cost_micros: (i * 37) % 100_000,
        page_url: `https://publisher.example/articles/${i % 1000}?utm_source=adgate`,
      }
      builder.add(
        topic,
        i % PARTITIONS,
        Buffer.from(value.auction_id),
        Buffer.from(JSON.stringify(value)),
        headers,
      )
    }
    const out = builder.finish(Date.now())
    return { buffer: Buffer.from(out.buffer), batches: out.batches }
  })
}

function sinkOf(Sink: SinkClass, topic: string): BatchSink {
  return new Sink({
    brokers: [],
    clientId: 'adgate-bench',
    topics: [topic],
    connection: {},
    ackTimeoutMs: 10_000,
    maxInFlight: 8,
    maxPendingBytes: 256 << 20,
    lingerMs: 5,
    logger: { info() {}, warn() {}, error() {}, debug() {} } as never,
    cluster: new AnsweringCluster(topic, PARTITIONS),
  })
}

/** `requests` sends at RATE per second (open loop), all answered; CPU µs per request. */
async function round(sink: BatchSink, sets: readonly BatchSet[], requests: number): Promise<number> {
  const gap = 1000 / RATE
  const sent: Promise<unknown>[] = []
  const cpu0 = threadCpuMs()
  const t0 = performance.now()
  for (let i = 0; i < requests; i++) {
    const wait = t0 + i * gap - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    sent.push(sink.send(sets[i % sets.length]!))
  }
  await Promise.all(sent)
  return ((threadCpuMs() - cpu0) * 1000) / requests
}

export async function run({ quick }: RunOptions): Promise<BenchResult[]> {
  const baselineDir = process.env.BENCH_BASELINE_DIR
  const sides: SinkClass[] = [BatchSink] // candidate, then baseline
  if (baselineDir) {
    const old = (await import(join(baselineDir, 'dist', 'kafka', 'batch-sink.js'))) as {
      BatchSink: SinkClass
    }
    sides.push(old.BatchSink)
  }
  const topic = 'adgate.impressions'
  const sets = requestSets(topic)
  const sinks = sides.map((Sink) => sinkOf(Sink, topic))
  const rounds = quick ? 2 : Number(process.env.BENCH_PRODUCE_STAGE_ROUNDS ?? 8)
  const requests = quick ? 200 : 600
  const perRequest: number[][] = sides.map(() => [])
  const loads: number[] = []
  try {
    for (const sink of sinks) {
      await sink.connect()
      await sink.preconnect(Date.now() + 10_000)
      await round(sink, sets, requests) // warm-up
    }
    for (let r = 0; r < rounds; r++)
      for (let k = 0; k < sinks.length; k++) {
        const s = (r + k) % sinks.length
        perRequest[s]!.push(await round(sinks[s]!, sets, requests))
        loads.push(loadavg()[0]!)
      }
  } finally {
    await Promise.all(sinks.map((s) => s.close()))
  }
  const value = median(perRequest[0]!)
  const baseline = perRequest[1] ? median(perRequest[1]) : undefined
  process.stdout.write(
    `produce-stage: candidate ${perRequest[0]!.map((x) => x.toFixed(0)).join(' ')} µs/request` +
      (perRequest[1] ? `; baseline ${perRequest[1].map((x) => x.toFixed(0)).join(' ')}` : '') +
      `; load ${Math.min(...loads).toFixed(2)}-${Math.max(...loads).toFixed(2)}\n`,
  )
  return [
    {
      case: `produce stage, ${RATE} requests/s of ${EVENTS} impressions (${PARTITIONS} batches, 5 ms linger), in-process broker, main thread`,
      metric: 'cpu_us_per_request',
      value,
      unit: 'µs',
      ...(baseline === undefined ? {} : { baseline, ratio: value / baseline }),
    },
  ]
}
