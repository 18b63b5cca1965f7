import type { Logger } from '../config/logger.js'
import { type BatchSink, KafkaRefusedError } from '../kafka/batch-sink.js'
import { crc32c } from '../kafka/protocol/crc32c.js'
import type { Spool } from './spool.js'
import type { QuarantinedEntry, SpoolEntry, TopicPartition } from './store.js'

export interface ReplayStats {
  /** Batches and records replayed into Kafka and acknowledged. */
  batches: number
  records: number
  /** Batches dropped without reaching Kafka (failed their CRC: never replay garbage), and their records. */
  corrupt: number
  dropped: number
  /** Records moved to the quarantine (Kafka refused them for good), and records Kafka later took from there. */
  quarantined: number
  released: number
}

/** How often quarantined batches are offered to Kafka again (the operator may have raised a limit). */
export const QUARANTINE_RETRY_MS = 60_000

/**
 * Drains the spool into Kafka once Kafka is back: oldest first, one batch per partition at a time
 * so each partition's batches reach Kafka in the order they were spooled, and an entry is deleted
 * only after Kafka acknowledged it. Partitions are drained independently: one whose leader is gone
 * (a partial outage) waits, unread, while the others drain. A crash between the acknowledgement
 * and the delete sends that entry again: consumers dedup by event_id.
 *
 * A batch Kafka refuses for good (its topic's max.message.bytes lowered after the batch was
 * spooled, a record the topic calls invalid) was already answered 200: it moves to the spool's
 * quarantine instead of blocking its partition, and is offered to Kafka again every
 * QUARANTINE_RETRY_MS until Kafka takes it (the operator fixed the topic) or an operator exports
 * it (`adgate spool export`). Nothing acknowledged is dropped; the partition's later batches go on.
 */
export class Replayer {
  private running = false
  private stopped = false
  private loop: Promise<void> | null = null
  /** Acknowledged by Kafka (or refused for good) and not yet deleted from the spool. */
  private acked: SpoolEntry[] = []
  readonly stats: ReplayStats = {
    batches: 0,
    records: 0,
    corrupt: 0,
    dropped: 0,
    quarantined: 0,
    released: 0,
  }
  private quarantineRetryAt = 0

  constructor(
    private readonly spool: Spool,
    private readonly sink: BatchSink,
    private readonly logger: Logger,
    private readonly readBytes = 4 * 1024 * 1024,
    private readonly quarantineRetryMs = QUARANTINE_RETRY_MS,
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
        if (this.spool.quarantinedEntries > 0 && this.sink.ready && Date.now() >= this.quarantineRetryAt) {
          this.quarantineRetryAt = Date.now() + this.quarantineRetryMs
          await this.retryQuarantined()
          await this.spool.resync()
        }
        const waiting = this.sink.ready ? this.waitingPartitions() : []
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
    for (const [i, o] of outcomes.entries()) {
      const e = good[i]!
      if (o.status === 'rejected') {
        firstFailure ??= o.reason
        failed.push(e)
      } else if (o.value instanceof KafkaRefusedError) {
        // Retrying now would block the partition for good: aside, kept, retried later.
        await this.spool.quarantine([e], o.value.message)
        this.stats.quarantined += e.records
        this.quarantineRetryAt = Date.now() + this.quarantineRetryMs
        this.logger.error(
          { err: o.value, id: e.id, topic: e.topic, partition: e.partition, records: e.records },
          'Kafka refused a spooled batch for good; kept in the spool quarantine (adgate_spool_quarantined_events), offered again every minute; `adgate spool export` writes its events out',
        )
      } else {
        this.stats.records += e.records
        this.stats.batches++
        done.push(e)
      }
    }
    if (done.length > 0) {
      this.acked = done
      await this.spool.remove(done)
      this.acked = []
    }
    if (failed.length > 0)
      this.logger.debug({ err: firstFailure, waiting: failed.length }, 'spooled batches not replayed yet')
    return failed
  }

  /**
   * Offers every quarantined batch to Kafka once, one per partition at a time in id order: what
   * Kafka takes leaves the quarantine, what it refuses again stays (with the new refusal), what
   * fails otherwise (Kafka down again, the partition without a leader) waits for the next retry,
   * with the rest of its partition: a partition that cannot take batches costs no ack deadline each.
   */
  private async retryQuarantined(): Promise<void> {
    const waiting = new Set<string>()
    let after = 0
    for (;;) {
      const entries = await this.spool.quarantined(after, this.readBytes)
      if (entries.length === 0 || this.stopped) return
      after = entries[entries.length - 1]!.id
      for (const all of rounds(entries)) {
        for (const e of all) if (!this.sink.available(e.topic, e.partition)) waiting.add(tpKey(e))
        const round = all.filter((e) => !waiting.has(tpKey(e)))
        const outcomes = await Promise.allSettled(round.map((e) => this.send(e)))
        const taken: QuarantinedEntry[] = []
        for (const [i, o] of outcomes.entries()) {
          const e = round[i]!
          if (o.status === 'rejected') {
            waiting.add(tpKey(e))
            continue
          }
          if (o.value instanceof KafkaRefusedError) await this.spool.refusedAgain([e], o.value.message)
          else taken.push(e)
        }
        if (taken.length === 0) continue
        await this.spool.removeQuarantined(taken)
        for (const e of taken) {
          this.stats.released += e.records
          this.stats.records += e.records
          this.stats.batches++
        }
        this.logger.info(
          { ids: taken.map((e) => e.id), records: this.stats.released },
          'Kafka took quarantined spool batches',
        )
      }
    }
  }

  /** One entry as its own batch: acknowledged ('sent'), refused for good (the refusal), or a rejection. */
  private async send(e: SpoolEntry): Promise<'sent' | KafkaRefusedError> {
    const set = {
      buffer: e.bytes,
      batches: [
        { topic: e.topic, partition: e.partition, records: e.records, offset: 0, length: e.bytes.length },
      ],
    }
    try {
      const refusal = this.sink.refusal(set)
      if (refusal) return refusal
      return (await this.sink.send(set)).get(0) ?? 'sent'
    } catch (err) {
      if (err instanceof KafkaRefusedError) return err
      throw err
    }
  }

  /**
   * Stops replaying. With `drainBy` (a time), first keeps replaying until the spool is empty, Kafka
   * stops taking batches, or that time: a graceful stop hands what it can to Kafka instead of
   * leaving acknowledged events on this machine's disk until the next start. Returns the entries
   * left in the spool (quarantined ones not counted).
   */
  async stop(drainBy?: number): Promise<number> {
    if (drainBy !== undefined && this.running)
      while (
        this.spool.entries > 0 &&
        this.sink.ready &&
        this.waitingPartitions().length < this.spool.partitions().length &&
        Date.now() < drainBy
      )
        await sleep(20)
    this.stopped = true
    await this.loop
    return this.spool.entries
  }

  /** Spooled partitions without a leader (or failing): theirs wait while the others drain. */
  private waitingPartitions(): TopicPartition[] {
    return this.spool.partitions().filter((tp) => !this.sink.available(tp.topic, tp.partition))
  }
}

/** Split entries (in id order) into groups with at most one batch per topic-partition, order kept. */
export function rounds<T extends SpoolEntry>(entries: readonly T[]): T[][] {
  const out: T[][] = []
  let current: T[] = []
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
