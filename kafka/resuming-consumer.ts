import type { Readable } from 'node:stream'
import { ListOffsetTimestamps } from '@platformatic/kafka'

/**
 * A consumer group member that hands over records in batches, one batch at a time, and never
 * loses its place. @platformatic/kafka 1.35's MessagesStream ends on any fetch error and cannot
 * seek, so this supervisor keeps the next offset of every partition it owns (the one after the
 * last record it handed over, or a seek's target) and reads through a stream created from those
 * offsets: a failed stream, a seek or a rebalance replaces the stream, and reading resumes exactly
 * there — no record skipped, none handed over twice (unless a failed batch is handed over again).
 * Partitions it newly owns start at the group's committed offset, or at the beginning.
 */

/** A consumed record: what the supervisor needs of @platformatic/kafka's Message. */
export interface OffsetRecord {
  topic: string
  partition: number
  offset: bigint
}

export interface TopicPartition {
  topic: string
  partition: number
}

interface Assignment {
  topic: string
  partitions: number[]
}

/** What the supervisor uses of @platformatic/kafka's Consumer (a fake in unit tests). */
export interface GroupConsumer<R extends OffsetRecord> {
  readonly assignments: Assignment[] | null
  readonly topics: { trackAll(...topics: string[]): unknown }
  joinGroup(options: Record<string, never>): Promise<unknown>
  /** A stream of R from these offsets (mode 'manual', no autocommit). */
  consume(options: {
    topics: string[]
    mode: 'manual'
    offsets: (TopicPartition & { offset: bigint })[]
    autocommit: false
  }): Promise<Readable & AsyncIterable<R>>
  listCommittedOffsets(options: { topics: Assignment[] }): Promise<Map<string, bigint[]>>
  listOffsets(options: {
    topics: string[]
    partitions: Record<string, number[]>
    timestamp: bigint
  }): Promise<Map<string, bigint[]>>
  on(event: 'consumer:group:join', listener: () => void): unknown
  on(event: 'consumer:heartbeat:error', listener: (payload: { error: Error }) => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
}

export interface ResumingHandlers<R> {
  /** Records of any owned partitions, in offset order per partition; the next batch waits for this one. */
  onBatch(records: R[]): Promise<void>
  /** Partitions another member owns now (their records are no longer handed over). */
  onRevoke(partitions: TopicPartition[]): Promise<void>
}

export interface ResumingConsumerOptions {
  topics: string[]
  /** Records handed over at once, at most. */
  maxBatch?: number
  /** Wait before a failed stream, batch or join is tried again. */
  retryMs?: number
  onError(err: unknown, what: string): void
}

const key = (topic: string, partition: number): string => `${topic}\0${partition}`

function split(k: string): TopicPartition {
  const i = k.indexOf('\0')
  return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)) }
}

export class ResumingConsumer<R extends OffsetRecord> {
  /** Topic-partitions of the current assignment. */
  private owned = new Set<string>()
  /** The next offset to hand over, per owned topic-partition (absent: not resolved yet). */
  private readonly next = new Map<string, bigint>()
  private stream: Readable | null = null
  /** Set by a seek, a rebalance or a failure: the stream must be created again before reading on. */
  private restart = true
  private stopped = false
  private waiter: (() => void) | null = null
  private joining = false
  private loop: Promise<void> = Promise.resolve()
  private handlers: ResumingHandlers<R> | null = null
  private readonly maxBatch: number
  private readonly retryMs: number

  constructor(
    private readonly consumer: GroupConsumer<R>,
    private readonly o: ResumingConsumerOptions,
  ) {
    this.maxBatch = o.maxBatch ?? 10_000
    this.retryMs = o.retryMs ?? 1000
  }

  /** Joins the group and starts handing over batches; resolves once this member is in the group. */
  async start(handlers: ResumingHandlers<R>): Promise<void> {
    this.handlers = handlers
    const c = this.consumer
    c.on('consumer:group:join', this.onJoin)
    // After a heartbeat that failed for another reason than the group (a lost connection),
    // platformatic 1.35 stops heartbeating: join again, or the group would expire this member.
    c.on('consumer:heartbeat:error', ({ error }) => {
      this.o.onError(error, 'kafka consumer heartbeat failed; joining the group again')
      this.rejoin()
    })
    // Emitted when platformatic's own re-join gave up.
    c.on('error', (err) => {
      this.o.onError(err, 'kafka consumer left the group; joining again')
      this.rejoin()
    })
    // The subscription belongs to the member, not to a stream: closing a stream must not make
    // the consumer rejoin the group (platformatic rejoins when a stream adds a topic it does not track).
    c.topics.trackAll(...this.o.topics)
    await c.joinGroup({})
    this.loop = this.run()
  }

  /** Topic-partitions this member owns. */
  assigned(): TopicPartition[] {
    return [...this.owned].map(split)
  }

  /** The next batch starts at these offsets (owned partitions only). */
  seek(positions: (TopicPartition & { offset: bigint })[]): void {
    for (const p of positions) {
      const k = key(p.topic, p.partition)
      if (this.owned.has(k)) this.next.set(k, p.offset)
    }
    this.wakeForRestart()
  }

  /** Hands over nothing more; resolves after the batch being handled. The consumer is not closed. */
  async stop(): Promise<void> {
    this.stopped = true
    this.wake()
    await this.loop
    this.drop()
  }

  private readonly onJoin = (): void => {
    const now = new Set<string>()
    for (const a of this.consumer.assignments ?? []) for (const p of a.partitions) now.add(key(a.topic, p))
    const revoked: TopicPartition[] = []
    for (const k of this.owned) {
      if (now.has(k)) continue
      revoked.push(split(k))
      this.next.delete(k)
    }
    this.owned = now
    this.wakeForRestart()
    if (revoked.length > 0)
      this.handlers!.onRevoke(revoked).catch((err: unknown) =>
        this.o.onError(err, 'revoking partitions failed'),
      )
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.restart) await this.reopen()
        const batch = await this.take()
        if (batch.length === 0) continue
        try {
          await this.handlers!.onBatch(batch)
        } catch (err) {
          this.rewind(batch)
          throw err
        }
      } catch (err) {
        if (this.stopped) break
        this.o.onError(err, 'kafka consumer: reading again from the last records handed over')
        this.restart = true
        this.drop() // so only a seek, a rebalance or stop() ends the wait early
        await this.pause(this.retryMs)
      }
    }
  }

  /** A new stream from `next` for every owned partition; the old one is dropped with what it buffered. */
  private async reopen(): Promise<void> {
    this.restart = false
    const unresolved = [...this.owned].filter((k) => !this.next.has(k))
    if (unresolved.length > 0) await this.resolve(unresolved)
    if (this.restart || this.stopped) return // a rebalance or seek came meanwhile: start over
    const old = this.stream
    if (this.owned.size > 0) {
      const offsets = [...this.owned].map((k) => ({ ...split(k), offset: this.next.get(k)! }))
      const stream = await this.consumer.consume({
        topics: this.o.topics,
        mode: 'manual',
        offsets,
        autocommit: false,
      })
      // A permanent 'readable' listener keeps the stream in paused mode, where it fetches ahead
      // (up to its high-water mark) while a batch is handled; errors end it and wake the loop.
      stream.on('readable', this.wake)
      stream.on('error', this.wake)
      stream.on('close', this.wake)
      this.stream = stream
    } else this.stream = null
    this.drop(old)
  }

  private drop(stream = this.stream): void {
    if (stream === null) return
    if (stream === this.stream) this.stream = null
    stream.off('readable', this.wake)
    stream.off('close', this.wake)
    stream.on('error', () => {}) // whatever it still reports is of no interest
    stream.off('error', this.wake)
    stream.destroy()
  }

  /** Where newly owned partitions start: the group's committed offset, else the earliest one. */
  private async resolve(keys: string[]): Promise<void> {
    const byTopic = new Map<string, number[]>()
    for (const k of keys) {
      const { topic, partition } = split(k)
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition])
    }
    const committed = await this.consumer.listCommittedOffsets({
      topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
    })
    const missing: Record<string, number[]> = {}
    for (const [topic, partitions] of byTopic) {
      for (const p of partitions) {
        const offset = committed.get(topic)?.[p]
        if (offset !== undefined && offset >= 0n) this.setStart(topic, p, offset)
        else missing[topic] = [...(missing[topic] ?? []), p]
      }
    }
    const topics = Object.keys(missing)
    if (topics.length === 0) return
    const earliest = await this.consumer.listOffsets({
      topics,
      partitions: missing,
      timestamp: ListOffsetTimestamps.EARLIEST,
    })
    for (const topic of topics)
      for (const p of missing[topic]!) this.setStart(topic, p, earliest.get(topic)![p]!)
  }

  private setStart(topic: string, partition: number, offset: bigint): void {
    const k = key(topic, partition)
    // Still owned, and not placed by a seek meanwhile.
    if (this.owned.has(k) && !this.next.has(k)) this.next.set(k, offset)
  }

  /** The records buffered now (waiting for some), from `next` on; [] when the stream must change. */
  private async take(): Promise<R[]> {
    for (;;) {
      if (this.restart || this.stopped) return []
      const stream = this.stream
      if (stream === null) {
        await this.pause(Number.POSITIVE_INFINITY) // owns nothing: until a rebalance
        continue
      }
      const out: R[] = []
      while (out.length < this.maxBatch) {
        const r = stream.read() as R | null
        if (r === null) break
        const k = key(r.topic, r.partition)
        const next = this.next.get(k)
        if (next === undefined || r.offset < next) continue // revoked, or before a seek's target
        this.next.set(k, r.offset + 1n)
        out.push(r)
      }
      if (out.length > 0) return out
      if (stream.errored) throw stream.errored
      if (stream.destroyed || stream.readableEnded) throw new Error('the Kafka message stream ended')
      await this.pause(Number.POSITIVE_INFINITY)
    }
  }

  /** A batch that failed is handed over again, unless a seek or rebalance moved its partitions since. */
  private rewind(batch: R[]): void {
    const first = new Map<string, bigint>()
    const last = new Map<string, bigint>()
    for (const r of batch) {
      const k = key(r.topic, r.partition)
      if (!first.has(k)) first.set(k, r.offset)
      last.set(k, r.offset)
    }
    for (const [k, offset] of first) if (this.next.get(k) === last.get(k)! + 1n) this.next.set(k, offset)
  }

  private rejoin(): void {
    if (this.joining || this.stopped) return
    this.joining = true
    void (async () => {
      while (!this.stopped) {
        try {
          await this.consumer.joinGroup({})
          break
        } catch (err) {
          if (this.stopped) break
          this.o.onError(err, 'joining the consumer group failed; trying again')
          await new Promise((r) => setTimeout(r, this.retryMs).unref())
        }
      }
      this.joining = false
    })()
  }

  private wakeForRestart(): void {
    this.restart = true
    this.wake()
  }

  private readonly wake = (): void => {
    const w = this.waiter
    this.waiter = null
    w?.()
  }

  /** Until woken (data, a stream's end, a seek, a rebalance, stop) or `ms` passed. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => this.wake(), ms) : undefined
      this.waiter = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}
