// An EventSource over in-memory logs: batches interleave partitions in a seeded random order,
// like a consumer fetching several partitions at once. Honors commit and seek like Kafka.
// Declaration mirrored in test/correlator/joins.test.ts: both implement the correlator's EventSource
// (ArraySource here, partitions interleaved at random; ListSource there, records in the order given).
import type {
  EventSource,
  PartitionEnd,
  Position,
  SourceHandlers,
  SourceRecord,
} from '../../correlator/source.js'
import { Random } from '../../generator/random.js'
import type { Logs } from './funnel-records.js'

export class CrashError extends Error {
  constructor() {
    super('simulated crash')
  }
}

/** Runs a correlator to the end of its source, or to its simulated crash. */
export async function runToEnd(c: {
  start(): Promise<void>
  stop(): Promise<void>
  kill(): void
}): Promise<void> {
  try {
    await c.start()
  } catch (err) {
    if (!(err instanceof CrashError)) throw err
    c.kill() // dead: nothing pending is flushed
    return
  }
  await c.stop()
}

export class ArraySource implements EventSource {
  readonly committed = new Map<string, number>()
  batches = 0
  /** Hand a batch whose handler failed over again, as the Kafka source does, instead of failing. */
  redeliverFailed = false
  failures = 0
  private readonly fetch = new Map<string, number>()
  private stopped = false

  constructor(
    private readonly logs: Logs,
    private readonly seed: number,
    private readonly partitionCount: number,
    /**
     * Die after this many batches, as under kill -9: start() rejects with CrashError, so nothing
     * pending is flushed; only what the correlator had written survives.
     */
    private readonly stopAfter = Number.POSITIVE_INFINITY,
    committed?: Map<string, number>,
  ) {
    if (committed) for (const [k, v] of committed) this.committed.set(k, v)
  }

  async partitions(): Promise<number> {
    return this.partitionCount
  }

  async start(handlers: SourceHandlers): Promise<void> {
    const rng = new Random(this.seed)
    for (const k of this.logs.keys()) this.fetch.set(k, this.committed.get(k) ?? 0)
    const keys = [...this.logs.keys()]
    while (!this.stopped) {
      if (this.batches >= this.stopAfter) throw new CrashError()
      const open = keys.filter((k) => this.fetch.get(k)! < this.logs.get(k)!.length)
      if (open.length === 0) break
      const batch: SourceRecord[] = []
      const take = open.filter(() => rng.chance(0.6))
      for (const k of take.length > 0 ? take : [rng.pick(open)!]) {
        const log = this.logs.get(k)!
        const from = this.fetch.get(k)!
        const n = rng.int(1, 40)
        batch.push(...log.slice(from, from + n))
        this.fetch.set(k, Math.min(log.length, from + n))
      }
      this.batches++
      try {
        await handlers.onBatch(batch)
      } catch (err) {
        if (!this.redeliverFailed) throw err
        this.failures++
        for (const r of batch.toReversed()) this.fetch.set(`${r.topic}:${r.partition}`, Number(r.offset))
      }
    }
  }

  async commit(positions: Position[]): Promise<void> {
    for (const p of positions) this.committed.set(`${p.topic}:${p.partition}`, Number(p.offset))
  }

  async seek(positions: Position[]): Promise<void> {
    for (const p of positions) this.fetch.set(`${p.topic}:${p.partition}`, Number(p.offset))
  }

  async ends(): Promise<PartitionEnd[]> {
    const ends: PartitionEnd[] = []
    for (const log of this.logs.values()) {
      const last = log.at(-1)
      if (last) ends.push({ topic: last.topic, partition: last.partition, end: BigInt(last.offset) + 1n })
    }
    return ends
  }

  async stop(): Promise<void> {
    this.stopped = true
  }
}
