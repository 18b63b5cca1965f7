import { decodeRecordBatch, QUALITY_FLAGS_HEADER } from '../kafka/protocol/record-batch.js'
import type { Spool } from '../spool/spool.js'
import type { SpoolEntry } from '../spool/store.js'
import type { EventSource, PartitionEnd, Position, SourceHandlers, SourceRecord } from './source.js'
import { tpKey } from './source.js'

/**
 * The embedded mode's source: the gateway's local spool, read in the order it was written, with
 * the spool's per-partition offsets (contiguous, like Kafka's). An entry is deleted once the
 * correlator has committed positions past all its records, so the spool is the only copy of an
 * event until it is in storage.
 */
export class SpoolSource implements EventSource {
  private stopped = false
  private loop: Promise<void> | null = null
  /** Highest entry id handed out; reading resumes after it. */
  private cursor = 0
  /** Records below these offsets are not handed out again (after a seek or a restart). */
  private readonly floors = new Map<string, bigint>()
  /** Entries handed out and not yet deleted, by id. */
  private readonly delivered = new Map<number, SpoolEntry>()

  constructor(
    private readonly spool: Spool,
    private readonly partitionCount: number,
    private readonly onError: (err: Error) => void,
    private readonly readBytes = 2 * 1024 * 1024,
  ) {}

  async partitions(): Promise<number> {
    return this.partitionCount
  }

  async start(handlers: SourceHandlers): Promise<void> {
    this.loop = this.run(handlers)
  }

  private async run(handlers: SourceHandlers): Promise<void> {
    while (!this.stopped) {
      try {
        await this.step(handlers)
      } catch (err) {
        // Nothing is lost: the entries stay in the spool and are read again after the pause.
        this.onError(err as Error)
        await this.seek([])
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
  }

  private async step(handlers: SourceHandlers): Promise<void> {
    const entries = this.spool.entries === 0 ? [] : await this.spool.read(this.cursor, this.readBytes)
    if (entries.length === 0) {
      await new Promise((r) => setTimeout(r, 20))
      return
    }
    const records: SourceRecord[] = []
    for (const e of entries) {
      this.cursor = e.id
      this.delivered.set(e.id, e)
      const floor = this.floors.get(tpKey(e.topic, e.partition)) ?? 0n
      const { firstTimestamp, records: batch } = decodeRecordBatch(e.bytes, QUALITY_FLAGS_HEADER)
      for (const r of batch) {
        const offset = BigInt(e.baseOffset + r.offsetDelta)
        if (offset < floor) continue
        records.push({
          topic: e.topic,
          partition: e.partition,
          offset: offset.toString(),
          key: r.key,
          value: r.value,
          timestamp: firstTimestamp,
          flags: r.header,
        })
      }
    }
    if (records.length > 0) await handlers.onBatch(records)
  }

  /** Positions are durable in storage: entries wholly before them are no longer needed. */
  async commit(positions: Position[]): Promise<void> {
    const next = new Map(positions.map((p) => [tpKey(p.topic, p.partition), BigInt(p.offset)]))
    const done = [...this.delivered.values()].filter((e) => {
      const at = next.get(tpKey(e.topic, e.partition))
      return at !== undefined && BigInt(e.baseOffset + e.records) <= at
    })
    if (done.length === 0) return
    for (const e of done) this.delivered.delete(e.id)
    await this.spool.remove(done)
  }

  /** Read again from these offsets: entries still in the spool are handed out from the start. */
  async seek(positions: Position[]): Promise<void> {
    for (const p of positions) this.floors.set(tpKey(p.topic, p.partition), BigInt(p.offset))
    this.cursor = 0
  }

  async ends(): Promise<PartitionEnd[]> {
    return (await this.spool.ends()).map((e) => ({
      topic: e.topic,
      partition: e.partition,
      end: BigInt(e.next),
    }))
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }
}
