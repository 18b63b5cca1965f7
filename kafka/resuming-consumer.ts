import { ListOffsetTimestamps } from '@platformatic/kafka'
import { beforeDeadline } from './cluster.js'

/**
 * A consumer group member that reads by fetch requests and hands over whole fetch responses, one
 * batch at a time, and never loses its place. It keeps two positions per partition it owns: the
 * next offset to hand over, and where the next fetch starts (ahead of it while a batch is being
 * handled: each leader has one fetch in flight or one response waiting). A seek, a rebalance or a
 * failure drops what was fetched ahead and fetches again from the first offset not handed over, so
 * no record is skipped and none is handed over twice (unless a failed batch is handed over again).
 * Partitions it newly owns start at the group's committed offset, or at the beginning.
 *
 * Why fetch requests and not @platformatic/kafka 1.35's MessagesStream: the stream pushes one
 * object per record (a spread copy, a header Map, a bound commit function and a diagnostics
 * context each), which cost 1.34× kafkajs' CPU per record; it ends on any fetch error; and one
 * partition's OFFSET_OUT_OF_RANGE (retention deleted records not read yet) failed every fetch forever.
 * Here such a partition moves on to the earliest offset the broker still has, and the gap is reported.
 */

export interface TopicPartition {
  topic: string
  partition: number
}

/** Records `from`..`to`-1 of a partition were deleted (retention) before they were read. */
export interface OffsetGap extends TopicPartition {
  from: bigint
  to: bigint
}

/** A record of a fetched record batch, as @platformatic/kafka parses it. */
export interface FetchedRecord {
  timestampDelta: bigint
  offsetDelta: number
  key: Buffer | null
  value: Buffer | null
  headers: [Buffer | null, Buffer | null][]
}

interface FetchedBatch {
  firstOffset: bigint
  lastOffsetDelta: number
  firstTimestamp: bigint
  attributes: number
  records: FetchedRecord[]
}

interface FetchedPartition {
  partitionIndex: number
  errorCode: number
  records?: FetchedBatch[]
}

export interface FetchResponse {
  responses: { topicId: string; partitions: FetchedPartition[] }[]
}

interface FetchPartition {
  partition: number
  fetchOffset: bigint
  partitionMaxBytes: number
  currentLeaderEpoch: number
  lastFetchedEpoch: number
}

interface Assignment {
  topic: string
  partitions: number[]
}

/** What the supervisor uses of @platformatic/kafka's Consumer (a fake in unit tests). */
export interface GroupConsumer {
  readonly assignments: Assignment[] | null
  readonly topics: { trackAll(...topics: string[]): unknown }
  joinGroup(options: Record<string, never>): Promise<unknown>
  metadata(options: { topics: string[]; forceUpdate?: boolean }): Promise<{
    topics: Map<string, { id: string; partitions: { leader: number }[] }>
  }>
  /** One Fetch request to one broker; a partition-level error rejects with the parsed response attached. */
  fetch(options: {
    node: number
    topics: { topicId: string; partitions: FetchPartition[] }[]
    connectionPool?: unknown
  }): Promise<FetchResponse>
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
  /** Reading skips deleted records: called before the first record after the gap is handed over. */
  onGap(gap: OffsetGap): Promise<void>
}

export interface ResumingConsumerOptions<R> {
  topics: string[]
  /** What a batch holds for each record (called once per record, in the loop that walks a response). */
  toRecord(topic: string, partition: number, offset: bigint, timestamp: number, record: FetchedRecord): R
  /** Records handed over at once: whole partitions of a response are added while they fit (default 10,000). */
  maxBatch?: number
  /** Bytes per partition per fetch (default 256 KiB). */
  maxBytesPerPartition?: number
  /** Fetches go through this pool, so a long-polling fetch never delays a heartbeat or a commit. */
  connectionPool?: unknown
  /** Wait before a failed fetch, batch or join is tried again. */
  retryMs?: number
  /**
   * A fetch, metadata or offsets request not answered within this is given up: reported, and
   * asked again (default 60 s; platformatic times each attempt out at 30 s, yet reading once
   * stopped for good across a broker restart with no error reported).
   */
  answerWithinMs?: number
  onError(err: unknown, what: string): void
}

const key = (topic: string, partition: number): string => `${topic}\0${partition}`

function split(k: string): TopicPartition {
  const i = k.indexOf('\0')
  return { topic: k.slice(0, i), partition: Number(k.slice(i + 1)) }
}

/** Kafka's error codes this reader acts on (the rest: refresh metadata and try again). */
const OFFSET_OUT_OF_RANGE = 1
/** Record batch attribute: a transaction marker, not data. */
const CONTROL_BATCH = 1 << 5

/** A response taken from one leader, with the generation it was asked under. */
interface Fetched {
  leader: number
  generation: number
  response?: FetchResponse
  error?: unknown
}

/** One partition's records of a response: handed over whole, and given back whole if its batch fails. */
interface Segment<R> {
  key: string
  from: bigint
  to: bigint
  records: R[]
}

export class ResumingConsumer<R> {
  /** Topic-partitions of the current assignment. */
  private owned = new Set<string>()
  /** The next offset to hand over, per owned topic-partition (absent: not resolved yet). */
  private readonly next = new Map<string, bigint>()
  /** Where the next fetch of each owned partition starts (ahead of `next` while a response waits). */
  private fetchAt = new Map<string, bigint>()
  /** Each owned partition's leader and its topic's id, from the last metadata. */
  private readonly leaders = new Map<string, { node: number; topicId: string }>()
  private readonly topicById = new Map<string, string>()
  /** Metadata and start offsets must be read again before the next fetch. */
  private stale = true
  /** Bumped by a seek, a rebalance or a failure: responses to older fetches are dropped. */
  private generation = 0
  /** Leaders with a fetch in flight or a response not yet taken. */
  private readonly busy = new Set<number>()
  private readonly fetched: Fetched[] = []
  private stopped = false
  private waiter: (() => void) | null = null
  private joining = false
  /** What run() awaits now (state()). */
  private waitingOn = 'the group join'
  private loop: Promise<void> = Promise.resolve()
  private handlers: ResumingHandlers<R> | null = null
  private readonly maxBatch: number
  private readonly maxBytesPerPartition: number
  private readonly retryMs: number
  private readonly answerWithinMs: number

  constructor(
    private readonly consumer: GroupConsumer,
    private readonly o: ResumingConsumerOptions<R>,
  ) {
    this.maxBatch = o.maxBatch ?? 10_000
    this.maxBytesPerPartition = o.maxBytesPerPartition ?? 1 << 18
    this.retryMs = o.retryMs ?? 1000
    this.answerWithinMs = o.answerWithinMs ?? 60_000
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
    c.topics.trackAll(...this.o.topics)
    await c.joinGroup({})
    this.loop = this.run()
  }

  /** Where the reading loop stands, for a report when it seems stuck. */
  state(): {
    waitingOn: string
    stale: boolean
    fetchingFrom: number[]
    responsesWaiting: number
    owned: number
  } {
    return {
      waitingOn: this.stopped ? 'nothing (stopped)' : this.waitingOn,
      stale: this.stale,
      fetchingFrom: [...this.busy],
      responsesWaiting: this.fetched.length,
      owned: this.owned.size,
    }
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
    this.refetch()
    this.wake()
  }

  /** Hands over nothing more; resolves after the batch being handled. The consumer is not closed. */
  async stop(): Promise<void> {
    this.stopped = true
    this.wake()
    await this.loop
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
    this.stale = true
    this.refetch()
    this.wake()
    if (revoked.length > 0)
      this.handlers!.onRevoke(revoked).catch((err: unknown) =>
        this.o.onError(err, 'revoking partitions failed'),
      )
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.stale) {
          this.waitingOn = 'metadata and start offsets'
          await this.refresh()
        }
        this.fetchAll()
        const f = this.fetched.shift()
        if (f === undefined) {
          this.waitingOn = 'fetch responses'
          await this.pause(Number.POSITIVE_INFINITY)
          continue
        }
        this.busy.delete(f.leader)
        if (f.generation !== this.generation) continue
        if (f.error !== undefined) {
          this.waitingOn = 'a failed fetch'
          await this.failed(f.error)
          continue
        }
        const segments = this.collect(f.response!)
        this.fetchAll() // read ahead while these are handled
        this.waitingOn = 'the batch handler'
        await this.handOver(segments)
      } catch (err) {
        if (this.stopped) break
        this.o.onError(err, 'kafka consumer: reading again from the last records handed over')
        this.stale = true
        this.refetch()
        this.waitingOn = 'the retry pause'
        await this.pause(this.retryMs)
      }
    }
  }

  /** Fetches ahead are void: the next ones start where handing over stands. */
  private refetch(): void {
    this.generation++
    this.fetchAt = new Map(this.next)
  }

  /** Start offsets of partitions newly owned, and every owned partition's leader. */
  private async refresh(): Promise<void> {
    this.stale = false
    const unresolved = [...this.owned].filter((k) => !this.next.has(k))
    if (unresolved.length > 0) await this.resolve(unresolved)
    const meta = await this.answered(
      this.consumer.metadata({ topics: this.o.topics, forceUpdate: true }),
      'kafka metadata',
    )
    this.leaders.clear()
    let leaderless = false
    for (const k of this.owned) {
      const { topic, partition } = split(k)
      const t = meta.topics.get(topic)
      const node = t?.partitions[partition]?.leader ?? -1
      if (t === undefined || node < 0) leaderless = true
      else {
        this.leaders.set(k, { node, topicId: t.id })
        this.topicById.set(t.id, topic)
      }
    }
    // A partition without a leader (an election) is asked about again later; the others go on.
    if (leaderless)
      setTimeout(() => {
        this.stale = true
        this.wake()
      }, this.retryMs).unref()
  }

  /** One fetch to every leader that has none in flight and no response waiting. */
  private fetchAll(): void {
    if (this.stale || this.stopped) return
    const requests = new Map<number, Map<string, FetchPartition[]>>()
    for (const [k, { node, topicId }] of this.leaders) {
      const fetchOffset = this.fetchAt.get(k)
      if (this.busy.has(node) || fetchOffset === undefined) continue
      const topics = requests.get(node) ?? new Map<string, FetchPartition[]>()
      requests.set(node, topics)
      const partitions = topics.get(topicId) ?? []
      topics.set(topicId, partitions)
      partitions.push({
        partition: split(k).partition,
        fetchOffset,
        partitionMaxBytes: this.maxBytesPerPartition,
        currentLeaderEpoch: -1,
        lastFetchedEpoch: -1,
      })
    }
    for (const [node, topics] of requests) {
      this.busy.add(node)
      const generation = this.generation
      const done = (f: Fetched) => {
        this.fetched.push(f)
        this.wake()
      }
      const fetch = this.consumer.fetch({
        node,
        topics: [...topics].map(([topicId, partitions]) => ({ topicId, partitions })),
        ...(this.o.connectionPool !== undefined ? { connectionPool: this.o.connectionPool } : {}),
      })
      this.answered(fetch, `kafka fetch from broker ${node}`).then(
        (response) => done({ leader: node, generation, response }),
        (error: unknown) => done({ leader: node, generation, error }),
      )
    }
  }

  /**
   * The records of a response from where each partition's fetch started; moves the fetch positions
   * past them (control batches included: a transaction marker takes an offset and holds no record).
   */
  private collect(response: FetchResponse): Segment<R>[] {
    const toRecord = this.o.toRecord
    const segments: Segment<R>[] = []
    for (const t of response.responses) {
      const topic = this.topicById.get(t.topicId)
      if (topic === undefined) continue
      for (const p of t.partitions) {
        const k = key(topic, p.partitionIndex)
        const from = this.fetchAt.get(k)
        const batches = p.records
        if (from === undefined || batches === undefined || batches.length === 0) continue
        const records: R[] = []
        let to = from
        for (const b of batches) {
          const end = b.firstOffset + BigInt(b.lastOffsetDelta) + 1n
          if (end > to) to = end
          if ((b.attributes & CONTROL_BATCH) !== 0) continue
          const t0 = Number(b.firstTimestamp)
          for (const r of b.records) {
            const offset = b.firstOffset + BigInt(r.offsetDelta)
            if (offset < from) continue // a batch is returned whole: records before the fetch offset
            records.push(toRecord(topic, p.partitionIndex, offset, t0 + Number(r.timestampDelta), r))
          }
        }
        if (to === from) continue
        this.fetchAt.set(k, to)
        segments.push({ key: k, from, to, records })
      }
    }
    return segments
  }

  /** Whole partitions per batch, up to maxBatch records (or one partition's, if it has more). */
  private async handOver(segments: Segment<R>[]): Promise<void> {
    let i = 0
    while (i < segments.length && !this.stopped) {
      const generation = this.generation
      const batch: R[] = []
      const taken: Segment<R>[] = []
      for (; i < segments.length; i++) {
        const s = segments[i]!
        if (taken.length > 0 && batch.length + s.records.length > this.maxBatch) break
        if (this.next.get(s.key) !== s.from) continue // moved or revoked since it was fetched
        for (const r of s.records) batch.push(r)
        taken.push(s)
        this.next.set(s.key, s.to)
      }
      if (batch.length === 0) continue
      try {
        await this.handlers!.onBatch(batch)
      } catch (err) {
        // Handed over again: unless a seek or rebalance moved a partition meanwhile.
        for (const s of taken) if (this.next.get(s.key) === s.to) this.next.set(s.key, s.from)
        throw err
      }
      if (generation !== this.generation) return // the rest was fetched for positions since moved
    }
  }

  /** A failed fetch: partitions out of range move on; anything else is tried again after a pause. */
  private async failed(error: unknown): Promise<void> {
    const response = responseOf(error)
    const outOfRange: string[] = []
    let other = response === undefined
    for (const t of response?.responses ?? []) {
      const topic = this.topicById.get(t.topicId)
      for (const p of t.partitions) {
        if (p.errorCode === 0) continue
        if (p.errorCode === OFFSET_OUT_OF_RANGE && topic !== undefined)
          outOfRange.push(key(topic, p.partitionIndex))
        else other = true
      }
    }
    if (outOfRange.length > 0) await this.moveIntoRange(outOfRange)
    if (!other) return
    this.o.onError(error, 'kafka fetch failed; asking for metadata and fetching again')
    this.stale = true
    this.refetch()
    await this.pause(this.retryMs)
  }

  /**
   * A fetch offset the log no longer holds. Below the log's start (retention deleted records this
   * member had not read): reading goes on at the start, and the gap is reported first. Past its end
   * (a log truncated by an unclean leader election): reading goes on at the end.
   */
  private async moveIntoRange(keys: string[]): Promise<void> {
    const generation = this.generation
    const earliest = await this.offsets(keys, ListOffsetTimestamps.EARLIEST)
    const latest = await this.offsets(keys, ListOffsetTimestamps.LATEST)
    for (const k of keys) {
      const at = this.fetchAt.get(k)
      const start = earliest.get(k)
      const end = latest.get(k)
      if (generation !== this.generation || at === undefined || start === undefined || end === undefined)
        continue
      if (at < start) {
        await this.handlers!.onGap({ ...split(k), from: at, to: start })
        if (this.fetchAt.get(k) !== at) continue
        this.fetchAt.set(k, start)
        if (this.next.get(k) === at) this.next.set(k, start)
      } else if (at > end) {
        this.o.onError(
          new Error(`${split(k).topic}/${split(k).partition}: offset ${at} is past the log's end ${end}`),
          'kafka partition truncated below the offset to read; reading on at its end',
        )
        this.fetchAt.set(k, end)
        if (this.next.get(k) === at) this.next.set(k, end)
      }
    }
  }

  private async offsets(keys: string[], timestamp: bigint): Promise<Map<string, bigint>> {
    const partitions: Record<string, number[]> = {}
    for (const k of keys) {
      const { topic, partition } = split(k)
      partitions[topic] = [...(partitions[topic] ?? []), partition]
    }
    const found = await this.answered(
      this.consumer.listOffsets({ topics: Object.keys(partitions), partitions, timestamp }),
      'kafka list offsets',
    )
    const out = new Map<string, bigint>()
    for (const k of keys) {
      const { topic, partition } = split(k)
      const offset = found.get(topic)?.[partition]
      if (offset !== undefined) out.set(k, offset)
    }
    return out
  }

  /** Where newly owned partitions start: the group's committed offset, else the earliest one. */
  private async resolve(keys: string[]): Promise<void> {
    const byTopic = new Map<string, number[]>()
    for (const k of keys) {
      const { topic, partition } = split(k)
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition])
    }
    const committed = await this.answered(
      this.consumer.listCommittedOffsets({
        topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
      }),
      'kafka committed offsets',
    )
    const missing: string[] = []
    for (const k of keys) {
      const { topic, partition } = split(k)
      const offset = committed.get(topic)?.[partition]
      if (offset !== undefined && offset >= 0n) this.setStart(k, offset)
      else missing.push(k)
    }
    if (missing.length === 0) return
    for (const [k, offset] of await this.offsets(missing, ListOffsetTimestamps.EARLIEST))
      this.setStart(k, offset)
  }

  private setStart(k: string, offset: bigint): void {
    // Still owned, and not placed by a seek meanwhile.
    if (!this.owned.has(k) || this.next.has(k)) return
    this.next.set(k, offset)
    this.fetchAt.set(k, offset)
  }

  /** `request`, or a DeadlineError naming `what` once answerWithinMs passed without an answer. */
  private answered<T>(request: Promise<T>, what: string): Promise<T> {
    return beforeDeadline(request, Date.now() + this.answerWithinMs, what)
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

  private readonly wake = (): void => {
    const w = this.waiter
    this.waiter = null
    w?.()
  }

  /**
   * Until woken (a response, a seek, a rebalance, stop) or `ms` passed; not at all once stopped: a
   * stop while the loop was busy (a refresh at start-up) woke nobody, and the correlator then hung
   * on SIGTERM (1 in 8 stops within 300 ms of its start).
   */
  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => this.wake(), ms) : undefined
      this.waiter = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}

/** The parsed response a fetch error carries (platformatic's ResponseError, maybe inside its retry errors). */
function responseOf(err: unknown): FetchResponse | undefined {
  const e = err as { response?: FetchResponse; errors?: unknown[] } | null
  if (e?.response?.responses !== undefined) return e.response
  for (const inner of [...(e?.errors ?? [])].reverse()) {
    const r = responseOf(inner)
    if (r !== undefined) return r
  }
  return undefined
}
