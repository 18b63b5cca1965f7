import type { Logger } from '../config/logger.js'
import { type BatchSink, KafkaRefusedError } from '../kafka/batch-sink.js'
import { crc32c } from '../kafka/protocol/crc32c.js'
import type { Spool } from './spool.js'
import type { SpoolEntry } from './store.js'

export interface ReplayStats {
  /** Batches and records replayed into Kafka and acknowledged. */
  batches: number
  records: number
  /** Batches dropped without reaching Kafka (failed CRC, or refused by Kafka), and their records. */
  corrupt: number
  dropped: number
}

/**
 * Drains the spool into Kafka once Kafka is back: oldest first, one batch per partition at a time
 * so each partition's batches reach Kafka in the order they were spooled, and an entry is deleted
 * only after Kafka acknowledged it. Partitions are drained independently: one whose leader is gone
 * (a partial outage) waits, unread, while the others drain. A crash between the acknowledgement
 * and the delete sends that entry again: consumers dedup by event_id.
 */
export class Replayer {
  private running = false
  private stopped = false
  private loop: Promise<void> | null = null
  /** Acknowledged by Kafka (or refused for good) and not yet deleted from the spool. */
  private acked: SpoolEntry[] = []
  readonly stats: ReplayStats = { batches: 0, records: 0, corrupt: 0, dropped: 0 }

  constructor(
    private readonly spool: Spool,
    private readonly sink: BatchSink,
    private readonly logger: Logger,
    private readonly readBytes = 4 * 1024 * 1024,
  ) {}

  start(): void {
    if (this.running) return
    this.running = true
    this.loop = this.run()
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        // Entries Kafka already acknowledged whose delete failed: delete again, never re-send.
        if (this.acked.length > 0) {
          await this.spool.remove(this.acked)
          this.acked = []
        }
        const waiting = this.sink.ready
          ? this.spool.partitions().filter((tp) => !this.sink.available(tp.topic, tp.partition))
          : []
        if (
          this.spool.entries === 0 ||
          !this.sink.ready ||
          waiting.length === this.spool.partitions().length
        ) {
          await sleep(100)
          continue
        }
        const entries = await this.spool.read(0, this.readBytes, waiting)
        const failed = new Set<string>()
        for (const round of rounds(entries)) {
          if (this.stopped) return
          const open = round.filter((e) => !failed.has(tpKey(e)))
          if (open.length > 0) for (const e of await this.replay(open)) failed.add(tpKey(e))
        }
        if (failed.size > 0) await sleep(100)
      } catch (err) {
        this.logger.warn({ err, spooled: this.spool.entries }, 'spool replay paused')
        await sleep(1000)
      }
    }
  }

  /** Sends each entry as its own batch; returns those that failed (their partitions wait for the next read). */
  private async replay(round: SpoolEntry[]): Promise<SpoolEntry[]> {
    const good: SpoolEntry[] = []
    const bad: SpoolEntry[] = []
    for (const e of round) (batchCrcOk(e.bytes) ? good : bad).push(e)
    if (bad.length > 0) {
      // SQLite's own checksums make this unreachable short of bit rot; never replay garbage.
      this.stats.corrupt += bad.length
      for (const e of bad) this.stats.dropped += e.records
      this.logger.error(
        { ids: bad.map((e) => e.id) },
        'spooled batch failed its CRC; dropped instead of replayed',
      )
      await this.spool.remove(bad)
    }
    const outcomes = await Promise.allSettled(good.map((e) => this.send(e)))
    const done: SpoolEntry[] = []
    const failed: SpoolEntry[] = []
    let firstFailure: unknown
    outcomes.forEach((o, i) => {
      const e = good[i]!
      if (o.status === 'rejected') {
        firstFailure ??= o.reason
        failed.push(e)
      } else if (o.value === 'refused') {
        // Kafka will never take these bytes (too large, invalid): retrying would wedge the spool
        // and block the partition forever. Counted in adgate_spool_dropped_events_total.
        this.stats.corrupt++
        this.stats.dropped += e.records
        done.push(e)
      } else {
        this.stats.records += e.records
        this.stats.batches++
        done.push(e)
      }
    })
    if (done.length > 0) {
      this.acked = done
      await this.spool.remove(done)
      this.acked = []
    }
    if (failed.length > 0)
      this.logger.debug({ err: firstFailure, waiting: failed.length }, 'spooled batches not replayed yet')
    return failed
  }

  private async send(e: SpoolEntry): Promise<'sent' | 'refused'> {
    const set = {
      buffer: e.bytes,
      batches: [
        { topic: e.topic, partition: e.partition, records: e.records, offset: 0, length: e.bytes.length },
      ],
    }
    try {
      const refusal = this.sink.refusal(set)
      if (refusal) throw refusal
      const refused = (await this.sink.send(set)).get(0)
      if (refused) throw refused
      return 'sent'
    } catch (err) {
      if (!(err instanceof KafkaRefusedError)) throw err
      this.logger.error({ err, id: e.id }, 'Kafka refused a spooled batch; dropped')
      return 'refused'
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }
}

/** Split entries (in id order) into groups with at most one batch per topic-partition, order kept. */
export function rounds(entries: readonly SpoolEntry[]): SpoolEntry[][] {
  const out: SpoolEntry[][] = []
  let current: SpoolEntry[] = []
  let seen = new Set<string>()
  for (const e of entries) {
    const key = tpKey(e)
    if (seen.has(key)) {
      out.push(current)
      current = []
      seen = new Set()
    }
    seen.add(key)
    current.push(e)
  }
  if (current.length > 0) out.push(current)
  return out
}

/** RecordBatch v2: the CRC-32C at byte 17 covers everything from byte 21 on. */
function batchCrcOk(batch: Buffer): boolean {
  return batch.length > 61 && batch.readUInt32BE(17) === crc32c(batch, 21)
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

function tpKey(e: SpoolEntry): string {
  return `${e.topic}\u0000${e.partition}`
}
