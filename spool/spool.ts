import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { PartitionCounts } from './partition-counts.js'
import type { QuarantinedEntry, SpoolEntry, SpoolStats, TopicPartition } from './store.js'

/** Batches to spool: the same shape the Kafka sink sends (one buffer, offsets of each batch). */
export interface SpoolBatches {
  readonly buffer: Buffer
  readonly batches: readonly {
    topic: string
    partition: number
    records: number
    offset: number
    length: number
  }[]
}

export class SpoolFullError extends Error {}

/**
 * The local on-disk spool, seen from the main thread. Appends resolve once committed (fsynced) by
 * the spool thread; the byte bound is enforced here, synchronously, so a full spool refuses at once.
 */
export class Spool {
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private appending = 0
  private bytesNow = 0
  private entriesNow = 0
  private recordsNow = 0
  private oldestNow: number | null = null
  private quarantinedEntriesNow = 0
  private quarantinedRecordsNow = 0
  /** bytesNow when an append last did not fit: full until something is added or removed */
  private refusedAt = -1
  /** Entries per topic-partition, committed and on their way in. */
  private readonly stored = new PartitionCounts()
  private readonly arriving = new PartitionCounts()

  private constructor(
    private readonly worker: Worker,
    readonly maxBytes: number,
  ) {
    worker.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id)
      if (!w) return
      this.waiting.delete(m.id)
      if (m.ok) w.resolve(m.result)
      else w.reject(new Error(`spool: ${m.error}`))
    })
    worker.on('error', (err) => {
      for (const w of this.waiting.values()) w.reject(err)
      this.waiting.clear()
    })
  }

  static async open(dir: string, maxBytes: number): Promise<Spool> {
    mkdirSync(dir, { recursive: true })
    const worker = new Worker(new URL('./thread.js', import.meta.url), {
      workerData: { path: join(dir, 'spool.sqlite') },
    })
    const spool = new Spool(worker, maxBytes)
    await spool.refreshStats()
    return spool
  }

  private call(msg: Record<string, unknown>): Promise<unknown> {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.worker.postMessage({ ...msg, id })
    })
  }

  get bytes(): number {
    return this.bytesNow
  }

  get entries(): number {
    return this.entriesNow
  }

  get records(): number {
    return this.recordsNow
  }

  get oldest(): number | null {
    return this.oldestNow
  }

  /** Batches (and their records) Kafka refused for good after they were acknowledged: in quarantine. */
  get quarantinedEntries(): number {
    return this.quarantinedEntriesNow
  }

  get quarantinedRecords(): number {
    return this.quarantinedRecordsNow
  }

  /** Something is in the spool or on its way in: new batches must queue behind it to keep order. */
  get inUse(): boolean {
    return this.entriesNow > 0 || this.appending > 0
  }

  /** The partition has batches here or on their way in: its new batches must queue behind them. */
  holds(topic: string, partition: number): boolean {
    return this.stored.has(topic, partition) || this.arriving.has(topic, partition)
  }

  /** The topic-partitions with batches committed here. */
  partitions(): TopicPartition[] {
    return this.stored.partitions()
  }

  get full(): boolean {
    return this.bytesNow >= this.maxBytes || this.bytesNow === this.refusedAt
  }

  /** Resolves once every batch is committed to disk; SpoolFullError when they do not fit. */
  async append(set: SpoolBatches): Promise<void> {
    let bytes = 0
    let records = 0
    for (const b of set.batches) {
      bytes += b.length
      records += b.records
    }
    if (this.bytesNow + bytes > this.maxBytes) {
      this.refusedAt = this.bytesNow
      throw new SpoolFullError(`the local spool is full (${this.bytesNow} of ${this.maxBytes} bytes)`)
    }
    this.bytesNow += bytes
    this.appending++
    const entries = set.batches.map((b) => ({
      topic: b.topic,
      partition: b.partition,
      records: b.records,
      bytes: set.buffer.subarray(b.offset, b.offset + b.length),
    }))
    for (const e of entries) this.arriving.add(e.topic, e.partition, 1)
    try {
      await this.call({ op: 'append', entries })
      this.entriesNow += entries.length
      this.recordsNow += records
      this.oldestNow ??= Date.now()
      for (const e of entries) this.stored.add(e.topic, e.partition, 1)
    } catch (err) {
      this.bytesNow -= bytes
      throw err
    } finally {
      this.appending--
      for (const e of entries) this.arriving.add(e.topic, e.partition, -1)
    }
  }

  /** The oldest entries after `afterId`, up to `maxBytes`, but none of the `skip` partitions. */
  async read(afterId: number, maxBytes: number, skip: readonly TopicPartition[] = []): Promise<SpoolEntry[]> {
    return asBuffers((await this.call({ op: 'read', afterId, maxBytes, skip })) as SpoolEntry[])
  }

  /** Forget entries that reached Kafka (or, in embedded mode, the correlator). */
  async remove(entries: readonly SpoolEntry[]): Promise<void> {
    await this.call({ op: 'remove', ids: entries.map((e) => e.id) })
    for (const e of entries) {
      this.bytesNow -= e.bytes.length
      this.recordsNow -= e.records
      this.stored.add(e.topic, e.partition, -1)
    }
    this.entriesNow -= entries.length
    await this.refreshOldest()
  }

  /** Move entries Kafka refused for good into the quarantine: out of the replay order, still on disk. */
  async quarantine(entries: readonly SpoolEntry[], reason: string): Promise<void> {
    await this.call({ op: 'quarantine', ids: entries.map((e) => e.id), reason })
    for (const e of entries) {
      this.recordsNow -= e.records
      this.quarantinedRecordsNow += e.records
      this.stored.add(e.topic, e.partition, -1)
    }
    this.entriesNow -= entries.length
    this.quarantinedEntriesNow += entries.length
    await this.refreshOldest()
  }

  /** The quarantined entries after `afterId`, oldest first, up to `maxBytes` (at least one). */
  async quarantined(afterId: number, maxBytes: number): Promise<QuarantinedEntry[]> {
    return asBuffers((await this.call({ op: 'quarantined', afterId, maxBytes })) as QuarantinedEntry[])
  }

  /** Kafka refused quarantined entries again: they stay, with the latest refusal. */
  async refusedAgain(entries: readonly QuarantinedEntry[], reason: string): Promise<void> {
    await this.call({ op: 'refusedAgain', ids: entries.map((e) => e.id), reason })
  }

  /** Forget quarantined entries Kafka has now acknowledged. */
  async removeQuarantined(entries: readonly QuarantinedEntry[]): Promise<void> {
    await this.call({ op: 'removeQuarantined', ids: entries.map((e) => e.id) })
    for (const e of entries) {
      this.bytesNow -= e.bytes.length
      this.quarantinedRecordsNow -= e.records
    }
    this.quarantinedEntriesNow -= entries.length
  }

  async removeThrough(id: number): Promise<void> {
    await this.call({ op: 'removeThrough', through: id })
    await this.refreshStats()
  }

  /** The next offset of each topic-partition, as a reader's lag needs it. */
  async ends(): Promise<{ topic: string; partition: number; next: number }[]> {
    return (await this.call({ op: 'ends' })) as { topic: string; partition: number; next: number }[]
  }

  private async refreshOldest(): Promise<void> {
    if (this.entriesNow === 0) this.oldestNow = null
    else this.oldestNow = (await this.call({ op: 'oldest' })) as number | null
  }

  /** Counts again from the store: `adgate spool export --remove` may have emptied the quarantine meanwhile. */
  resync(): Promise<void> {
    return this.refreshStats()
  }

  private async refreshStats(): Promise<void> {
    this.apply((await this.call({ op: 'stats' })) as SpoolStats)
  }

  /** Take the store's committed view; bytes of appends in flight are already counted here. */
  private apply(s: SpoolStats): void {
    this.entriesNow = s.entries
    this.recordsNow = s.records
    this.oldestNow = s.oldest
    this.quarantinedEntriesNow = s.quarantined.entries
    this.quarantinedRecordsNow = s.quarantined.records
    if (this.appending === 0) this.bytesNow = s.bytes
    this.stored.clear()
    for (const p of s.partitions) this.stored.add(p.topic, p.partition, p.entries)
  }

  async close(): Promise<void> {
    await this.call({ op: 'close' })
    await this.worker.terminate()
  }
}

/** Structured clone turns Buffers into plain Uint8Arrays: view them as Buffers again (no copy). */
function asBuffers<T extends SpoolEntry>(rows: readonly T[]): T[] {
  return rows.map((r) => ({
    ...r,
    bytes: Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
  }))
}
