import type { Connection } from '@platformatic/kafka'
import type { Logger } from '../config/logger.js'
import type { KafkaConnectionOptions } from './client-options.js'
import { Cluster, DeadlineError, securityProblem } from './cluster.js'
import { nextSequence, type ProducerIdentity, stampBatch } from './idempotence.js'
import { plaintextListenerMismatch } from './listener-probe.js'
import { PartitionLane, type PendingBatch, type SendState } from './partition-lane.js'
import { kafkaErrorName, produceFate } from './produce-errors.js'
import {
  brokerTimeoutMs,
  type PartitionRecords,
  type PartitionResult,
  PRODUCE_API,
  parseProduceResponse,
  writeProduceRequest,
} from './produce-request.js'
import { mergeRecordBatchGroups } from './protocol/batch-merge.js'
import type { EncodedBatch } from './protocol/record-batch.js'

/** Record batches encoded by a worker, in one buffer. */
export interface BatchSet {
  readonly buffer: Buffer
  readonly batches: readonly EncodedBatch[]
}

/** The events were not made durable in Kafka (the request gets a 503 unless the spool takes them). */
export class NotDurableError extends Error {}

/** Kafka will never accept these bytes (too large, invalid…): never spooled, never retried. */
export class KafkaRefusedError extends NotDurableError {
  constructor(
    message: string,
    /** The Kafka error name, e.g. MESSAGE_TOO_LARGE. */
    readonly kafkaError: string,
  ) {
    super(message)
  }
  get tooLarge(): boolean {
    return this.kafkaError === 'MESSAGE_TOO_LARGE' || this.kafkaError === 'RECORD_LIST_TOO_LARGE'
  }
}

/** Credentials, certificates or ACLs are wrong: no retry helps until an operator acts; never spooled. */
export class KafkaSecurityError extends NotDurableError {}

/** The batches of a send() that Kafka refused for good, by their index in the set. */
export type RefusedBatches = ReadonlyMap<number, KafkaRefusedError>

/**
 * How far a send() got, for a caller that must act before it settles (spool what is not
 * acknowledged yet): acked[i] is 1 once batch i is acknowledged, 2 once it is refused (then
 * refused has its reason).
 */
export interface SendProgress {
  readonly acked: Uint8Array
  readonly refused: Map<number, KafkaRefusedError>
}

export const ACKED = 1
export const REFUSED = 2

export interface BatchSinkOptions {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly topics: readonly string[]
  /** TLS and SASL, from kafka/client-options.ts. */
  readonly connection: KafkaConnectionOptions
  /** A send not acknowledged by then fails (its requests get 503); retries happen inside it. */
  readonly ackTimeoutMs: number
  /** Requests in flight per partition (at most 5: the broker keeps 5 batches per producer for dedup). */
  readonly maxInFlight: number
  /** Bytes of batches waiting for acknowledgement; beyond it sends fail at once (the memory bound). */
  readonly maxPendingBytes: number
  /**
   * How long a batch may wait for others to join it, as Kafka's linger.ms: the same partition's
   * (merged into one batch, see partsToMerge) and its leader's other partitions' (in the same
   * request). 0: sent at once (batches still merge while a partition is at its in-flight limit).
   */
  readonly lingerMs?: number
  /**
   * Bound of one merged record batch: a lane's batches that were never sent go to Kafka as one
   * batch of at most this many bytes (as encoded by the workers, and within the topic's
   * max.message.bytes) and MAX_MERGED_RECORDS records. Default 1 MiB.
   */
  readonly maxBatchBytes?: number
  /**
   * Whether a merge may run on the event loop now, rather than on the libuv threadpool: while the
   * loop is quiet, the work costs it little, and the hop to a thread waiting for a core would delay
   * the batches. Default: never (off the loop when the job is big enough, minOffLoopMergeBytes).
   */
  readonly mergeOnLoop?: () => boolean
  /**
   * A leader's merge job of fewer bytes (its batches, as the workers encoded them) runs on the
   * loop even when it is busy: the hop's fixed cost would outweigh the work it moves. Default
   * MIN_OFF_LOOP_MERGE_BYTES; 0: every merge off a busy loop.
   */
  readonly minOffLoopMergeBytes?: number
  readonly logger: Logger
  /** By default a Cluster over `brokers`; unit tests give one whose connections are fakes. */
  readonly cluster?: Cluster
}

export interface SinkStats {
  requests: number
  batches: number
  records: number
  bytes: number
  errors: number
  /** Records sent again under a new producer id after an attempt without an answer: possible duplicates. */
  possibleDuplicates: number
  /** Batches of send()s that went to Kafka merged into another batch (so not in `batches` as such). */
  merged: number
}

/** Faults POST /_faults/kafka?mode= can inject (ADGATE_FAULT_INJECTION=on). */
export const KAFKA_FAULTS = ['timeout', 'too-large', 'refused', 'unauthorized'] as const
export type KafkaFault = (typeof KAFKA_FAULTS)[number]

export function isKafkaFault(mode: string): mode is KafkaFault {
  return (KAFKA_FAULTS as readonly string[]).includes(mode)
}

function injectedFault(mode: KafkaFault): NotDurableError {
  if (mode === 'too-large')
    return new KafkaRefusedError('Kafka refused the events (injected fault)', 'MESSAGE_TOO_LARGE')
  if (mode === 'refused')
    return new KafkaRefusedError('Kafka refused the events (injected fault)', 'INVALID_RECORD')
  if (mode === 'unauthorized') return new KafkaSecurityError('Kafka refused adgate (injected fault)')
  return new NotDurableError('Kafka did not acknowledge the events (injected fault)')
}

/** A lane's queued batches to merge into one, and their bytes. */
interface MergeParts {
  readonly parts: PendingBatch[]
  readonly bytes: number
}

const NONE_REFUSED: RefusedBatches = new Map()

interface Entry {
  readonly lane: PartitionLane
  readonly batch: PendingBatch
}

/** The broker dedups the last 5 batches per producer and partition: more in flight could duplicate. */
const MAX_IN_FLIGHT_PER_PARTITION = 5
const REFRESH_GAP_MS = 200
/** Kafka counts as down (everything to the spool) once no broker has answered for this long. */
const DOWN_AFTER_SILENCE_MS = 1000
/** Records of one merged batch at most (with maxBatchBytes): bounds the merge's scratch memory too. */
export const MAX_MERGED_RECORDS = 16_384
const DEFAULT_MAX_BATCH_BYTES = 1 << 20
/**
 * A merge job off the loop costs a fixed ~20 µs of event-loop CPU (submit, completion) and ~40 µs
 * of process CPU (a threadpool thread woken, then the loop) more than merging on the loop, where
 * the JS merge costs ~0.01 µs per byte and the native one about the same per byte (bench/batch-merge.ts,
 * one job at a time): from ~8 KB on the hop saves the loop as much as it adds to the process, at
 * 16 KB three times as much. Below this, the merge stays on the loop.
 */
export const MIN_OFF_LOOP_MERGE_BYTES = 16 * 1024

/**
 * Writes pre-encoded record batches (encoded and compressed by the decode workers, so the main
 * thread only moves bytes) to partition leaders with acks=all as an idempotent producer: each
 * batch is stamped with a producer id, epoch and per-partition sequence number when it is first
 * sent (see PartitionLane for retries and ordering). One Produce request per leader carries every
 * partition that is ready. Every send() is answered by its ack deadline, whatever the brokers do.
 */
export class BatchSink {
  private readonly cluster: Cluster
  private readonly lanes: PartitionLane[] = []
  /** Each topic's lanes by partition number: looked up per batch, with no key string built. */
  private readonly lanesByTopic = new Map<string, PartitionLane[]>()
  private identity: ProducerIdentity | null = null
  private identityRequest: Promise<ProducerIdentity> | null = null
  private refreshing: Promise<void> | null = null
  private healthy = false
  private closed = false
  private pumpQueued = false
  private requestsInFlight = 0
  private pendingBytes = 0
  private probe: NodeJS.Timeout | null = null
  private failNext: KafkaFault | null = null
  private refreshedAt = 0
  /** When a broker last answered a produce or metadata request. */
  private answeredAt = 0
  /** Brokers whose failure was logged since the last good answer (one line each). */
  private readonly failingBrokers = new Set<string>()
  private refreshTimer: NodeJS.Timeout | null = null
  private refreshAskedAt = 0
  private lingerTimer: NodeJS.Timeout | null = null
  private lingerWakeAt = 0
  /** Produce requests dispatched to each leader and not yet answered (the linger waits on them). */
  private readonly leaderInFlight = new Map<number, number>()
  /** When a Produce request last went to each leader (the linger spaces them). */
  private readonly leaderSentAt = new Map<number, number>()
  /** Leaders whose lanes' batches are being merged off the event loop: they send once it is done. */
  private readonly leadersMerging = new Set<number>()
  private readonly perPartition: number
  private readonly maxBatchBytes: number
  private readonly minOffLoopMergeBytes: number
  /** Why Kafka cannot be used until an operator acts (credentials, certificates, ACLs). */
  private security: string | null = null
  readonly stats: SinkStats = {
    requests: 0,
    batches: 0,
    records: 0,
    bytes: 0,
    errors: 0,
    possibleDuplicates: 0,
    merged: 0,
  }

  constructor(private readonly options: BatchSinkOptions) {
    this.perPartition = Math.min(MAX_IN_FLIGHT_PER_PARTITION, options.maxInFlight)
    this.maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
    this.minOffLoopMergeBytes = options.minOffLoopMergeBytes ?? MIN_OFF_LOOP_MERGE_BYTES
    const connectTimeout = Math.min(options.ackTimeoutMs, 5000)
    this.cluster =
      options.cluster ??
      new Cluster(
        options.brokers,
        options.clientId,
        { ...options.connection, connectTimeout, requestTimeout: options.ackTimeoutMs, maxInflights: 64 },
        options.topics,
      )
  }

  /** Load metadata and a producer id (fails when no broker answers); then keep metadata fresh. */
  async connect(): Promise<void> {
    await this.refreshMetadata()
    // The producer id comes when a broker can give one; sends wait for it within their deadline.
    this.producerIdentity(Date.now() + this.options.ackTimeoutMs).catch(() => {})
    // Unhealthy or a partition without a leader: probe every second so readiness (or the
    // partition) comes back quickly; healthy: refresh leaders every 30 s.
    this.probe ??= setInterval(() => {
      if (!this.healthy || this.cluster.leaderless || Date.now() - this.refreshedAt >= 30_000)
        this.refreshMetadata().catch(() => {})
    }, 1000)
    this.probe.unref()
  }

  /**
   * Before the gateway says ready: the producer id, and a connection to every partition's leader,
   * so the first events pay for neither. Nothing is produced.
   */
  async preconnect(deadline: number): Promise<void> {
    await this.producerIdentity(deadline)
    const leaders = new Set<number>()
    for (const parts of this.cluster.current.leaders.values())
      for (const leader of parts.values()) if (leader >= 0) leaders.add(leader)
    await Promise.all([...leaders].map((id) => this.cluster.connectionTo(id, deadline)))
  }

  get ready(): boolean {
    return (
      this.healthy &&
      !this.closed &&
      this.security === null &&
      this.pendingBytes < this.options.maxPendingBytes
    )
  }

  /** Set while credentials, certificates or ACLs keep Kafka from taking events (names the setting). */
  get securityFailure(): string | null {
    return this.security
  }

  get bufferedBytes(): number {
    return this.pendingBytes
  }

  /** Produce requests waiting for their response. */
  get inFlightRequests(): number {
    return this.requestsInFlight
  }

  /** Partition count per topic, for the workers' partitioner. */
  partitionCounts(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [topic, parts] of this.cluster.current.leaders) out[topic] = parts.size
    return out
  }

  /**
   * What Kafka would refuse for good, known before sending: a batch larger than its topic's
   * max.message.bytes. Checked before a batch is spooled, so the spool never acknowledges it.
   */
  refusal(set: BatchSet): KafkaRefusedError | null {
    for (const b of set.batches) {
      const refused = this.batchRefusal(b)
      if (refused) return refused
    }
    return null
  }

  /** refusal() for one batch: over its own topic's max.message.bytes. */
  batchRefusal(b: EncodedBatch): KafkaRefusedError | null {
    const limit = this.cluster.maxMessageBytes(b.topic)
    if (limit === undefined || b.length <= limit) return null
    return new KafkaRefusedError(
      `the batch for ${b.topic}/${b.partition} is ${b.length} bytes; the topic accepts at most ${limit} (max.message.bytes)`,
      'MESSAGE_TOO_LARGE',
    )
  }

  /**
   * Whether the partition takes batches now: it has a leader and its last attempt did not fail.
   * While it does not, its batches go to the spool and the other partitions keep going directly.
   */
  available(topic: string, partition: number): boolean {
    if (this.cluster.leaderOf(topic, partition) === undefined) return false
    const lane = this.lanesByTopic.get(topic)?.[partition]
    return lane === undefined || !lane.failing
  }

  /** Fault tests: the next send fails as if Kafka never acknowledged it, refused it, or refused adgate. */
  injectFailure(mode: KafkaFault = 'timeout'): void {
    this.failNext = mode
  }

  /**
   * Resolves once every batch of the set is acknowledged or refused for good (too large, invalid),
   * with the refused ones: a refusal is the batch's own, the set's other batches go on. Rejects
   * when Kafka refuses adgate itself (KafkaSecurityError) or at the ack deadline. `progress` (when
   * given) follows each batch, so a caller can spool just the ones still pending.
   */
  send(set: BatchSet, progress?: SendProgress): Promise<RefusedBatches> {
    if (this.closed) return Promise.reject(new NotDurableError('the producer is closed'))
    if (this.failNext) {
      const mode = this.failNext
      this.failNext = null
      const err = injectedFault(mode)
      if (!(err instanceof KafkaRefusedError)) return Promise.reject(err)
      const refused = progress?.refused ?? new Map<number, KafkaRefusedError>()
      for (let i = 0; i < set.batches.length; i++) {
        refused.set(i, err)
        if (progress) progress.acked[i] = REFUSED
      }
      return Promise.resolve(refused)
    }
    let bytes = 0
    for (const b of set.batches) bytes += b.length
    if (this.pendingBytes + bytes > this.options.maxPendingBytes) {
      return Promise.reject(new NotDurableError('too many bytes are waiting for Kafka'))
    }
    if (set.batches.length === 0) return Promise.resolve(NONE_REFUSED)
    // Credentials or certificates refused at connect: answer at once; the probe clears it when fixed.
    if (this.security && !this.healthy && !this.security.startsWith('Kafka refused'))
      return Promise.reject(new KafkaSecurityError(this.security))
    const queuedAt = Date.now()
    return new Promise<RefusedBatches>((resolve, reject) => {
      const owner: SendState = {
        left: set.batches.length,
        settled: false,
        progress: progress ?? null,
        refused: progress?.refused ?? null,
        batches: [],
        resolve: () => {
          owner.settled = true
          clearTimeout(timer)
          resolve(owner.refused ?? NONE_REFUSED)
        },
        reject: (err) => {
          owner.settled = true
          clearTimeout(timer)
          this.stats.errors++
          reject(err)
        },
      }
      const timer = setTimeout(() => this.expire(owner), this.options.ackTimeoutMs)
      for (let i = 0; i < set.batches.length; i++) {
        const b = set.batches[i]!
        const lane = this.lane(b.topic, b.partition)
        const p: PendingBatch = {
          index: i,
          lane,
          bytes: set.buffer.subarray(b.offset, b.offset + b.length),
          records: b.records,
          owner,
          queuedAt,
          seq: -1,
          identity: null,
          sent: false,
          ambiguous: false,
          parts: null,
          carrier: null,
          alone: false,
        }
        owner.batches.push(p)
        lane.enqueue(p)
      }
      this.pendingBytes += bytes
      this.schedulePump()
    })
  }

  /**
   * The ack deadline passed. Batches never sent are withdrawn (they hold no sequence number);
   * batches already sent keep going in the background, in order, so their partition has no gap:
   * the answer names them, as they may still be written. A withdrawn batch takes the unsent ones
   * behind it in its lane along (their sends fail now, not at their own deadline): were they sent
   * later, they would land ahead of the withdrawn one's copy in the spool, out of order.
   */
  private expire(first: SendState): void {
    const expiring = [first]
    for (let k = 0; k < expiring.length; k++) {
      const owner = expiring[k]!
      if (owner.settled) continue
      const maybe = new Set<string>()
      for (const batch of owner.batches) {
        // A batch merged into another is as far as that one (which was sent: merges happen then).
        const p = batch.carrier ?? batch
        const queue = p.lane.queue
        const i = queue.indexOf(p)
        if (!p.sent && i >= 0) {
          // Only batches never sent are behind one never sent (or merged ones never sent: their parts).
          for (const behind of p.lane.dropFrom(i))
            for (const dropped of behind.parts ?? [behind]) {
              this.pendingBytes -= dropped.bytes.length
              if (dropped.owner !== owner) expiring.push(dropped.owner)
            }
        } else if (i >= 0 || p.lane.unacked.includes(p)) maybe.add(`${p.lane.topic}/${p.lane.partition}`)
      }
      owner.reject(this.unacknowledged(owner === first ? this.options.ackTimeoutMs : null, maybe))
    }
  }

  /** Why a send failed without an answer; `deadlineMs` null: a batch ahead of it in its lane expired. */
  private unacknowledged(deadlineMs: number | null, maybe: ReadonlySet<string>): NotDurableError {
    const tail =
      maybe.size === 0
        ? '; none of these events were sent'
        : `; the events for ${[...maybe].join(', ')} may still be written (a retry can duplicate them; consumers dedup by event_id)`
    // While Kafka refuses adgate, that is why nothing was acknowledged: the answer says so.
    const Failure = this.security ? KafkaSecurityError : NotDurableError
    const why = this.security ? ` (${this.security})` : ''
    const what =
      deadlineMs === null
        ? 'an earlier send to the same partition was not acknowledged in time'
        : `Kafka did not acknowledge within ${deadlineMs} ms`
    return new Failure(`${what}${why}${tail}`)
  }

  private lane(topic: string, partition: number): PartitionLane {
    let byPartition = this.lanesByTopic.get(topic)
    if (byPartition === undefined) {
      byPartition = []
      this.lanesByTopic.set(topic, byPartition)
    }
    let lane = byPartition[partition]
    if (lane === undefined) {
      lane = new PartitionLane(topic, partition)
      lane.identity = this.identity
      byPartition[partition] = lane
      this.lanes.push(lane)
    }
    return lane
  }

  private schedulePump(): void {
    if (this.pumpQueued) return
    this.pumpQueued = true
    queueMicrotask(() => {
      this.pumpQueued = false
      this.pump()
    })
  }

  /**
   * Send what every lane may send. A Produce request carries exactly one batch per partition
   * (brokers refuse more since v3), so a lane with several batches waiting fills several
   * requests to its leader — at most its in-flight limit — written in order on one connection,
   * which the broker handles in order; a lane's batches never sent go as one merged batch,
   * merged off the event loop first (startMerges): the leader's lanes wait for it, so they still
   * share one request. With a linger, a leader's lanes wait until their oldest batch has waited lingerMs
   * (or one holds maxBatchBytes), so the batches that arrive meanwhile share its request and batch.
   */
  private pump(): void {
    if (this.closed) return
    // Lanes that may send now, with their leaders.
    const ready: [PartitionLane, number][] = []
    let missing = false
    for (const lane of this.lanes) {
      if (lane.identity === null && this.identity !== null && !lane.needsNewIdentity)
        lane.identity = this.identity
      if (!lane.canSend || lane.inFlight >= lane.maxInFlight(this.perPartition)) continue
      const leader = this.cluster.leaderOf(lane.topic, lane.partition)
      if (leader === undefined) missing = true
      else ready.push([lane, leader])
    }
    const held = this.lingering(ready)
    this.startMerges(ready, held)
    const byLeader = new Map<number, Entry[][]>()
    let later = false
    for (const [lane, leader] of ready) {
      if (held?.has(leader) || this.leadersMerging.has(leader)) continue
      const requests = byLeader.get(leader) ?? []
      byLeader.set(leader, requests)
      const cap = lane.maxInFlight(this.perPartition)
      for (let round = 0; lane.canSend && lane.inFlight < cap; round++) {
        // Never-sent batches to merge, or behind what this pump sends (they came during its merge):
        // merged at the next pump, or sent there, once their linger is over.
        const head = lane.queue[0]!
        if (!head.sent && head.parts === null && (round > 0 || this.partsToMerge(lane) !== null)) {
          later = true
          break
        }
        const p = lane.takeFirst()
        if (p.seq < 0 || p.identity !== lane.identity) {
          p.seq = lane.nextSeq
          p.identity = lane.identity
          lane.nextSeq = nextSequence(lane.nextSeq, p.records)
          stampBatch(p.bytes, lane.identity!, p.seq)
        }
        p.sent = true
        lane.unacked.push(p)
        lane.inFlight++
        if (requests.length <= round) requests.push([])
        requests[round]!.push({ lane, batch: p })
      }
    }
    if (missing) this.refreshSoon()
    if (later) this.schedulePump()
    if (this.identity === null && this.lanes.some((l) => l.queue.length > 0))
      this.producerIdentity(Date.now() + this.options.ackTimeoutMs).catch((err: unknown) => {
        this.noteConnectionFailure(err, -1)
        setTimeout(() => this.schedulePump(), 200).unref()
      })
    for (const [leader, requests] of byLeader) {
      if (requests.length === 0) continue
      this.leaderInFlight.set(leader, (this.leaderInFlight.get(leader) ?? 0) + requests.length)
      this.leaderSentAt.set(leader, Date.now())
      void this.dispatch(leader, requests)
    }
  }

  /**
   * The batches a lane's next send would merge: its first one when never sent, with the never-sent
   * batches queued behind it (up to maxBatchBytes, the topic's max.message.bytes and
   * MAX_MERGED_RECORDS), so the records of several requests reach the broker as one batch in one
   * request; null when there is nothing to merge. A batch sent before goes again as it was: its
   * sequence numbers are what the broker dedups a retry by.
   */
  private partsToMerge(lane: PartitionLane): MergeParts | null {
    const queue = lane.queue
    const head = queue[0]!
    if (queue.length < 2 || head.sent || head.parts !== null || head.alone) return null
    const limit = this.mergedLimit(lane)
    const parts = [head]
    let bytes = head.bytes.length
    let records = head.records
    for (let i = 1; i < queue.length; i++) {
      const next = queue[i]!
      if (next.sent || next.parts !== null || bytes + next.bytes.length > limit) break
      if (records + next.records > MAX_MERGED_RECORDS) break
      parts.push(next)
      bytes += next.bytes.length
      records += next.records
    }
    return parts.length > 1 ? { parts, bytes } : null
  }

  private mergedLimit(lane: PartitionLane): number {
    return Math.min(this.maxBatchBytes, this.cluster.maxMessageBytes(lane.topic) ?? Infinity)
  }

  /**
   * Per leader free to send, its lanes' batches to merge, merged in one job off the event loop
   * (kafka/protocol/batch-merge.ts); the leader sends nothing until it is done (merged), then
   * everything at once. A leader with batches to send as they are (merged ones, retries) sends
   * those first: else batches arriving during each merge would hold its results back, merge after
   * merge. The batches stay queued meanwhile, so a deadline can still withdraw them.
   */
  private startMerges(ready: readonly [PartitionLane, number][], held: Set<number> | null): void {
    const sending = new Set<number>()
    for (const [lane, leader] of ready) {
      const head = lane.queue[0]!
      if (head.sent || head.parts !== null) sending.add(leader)
    }
    let jobs: Map<number, { lanes: [PartitionLane, PendingBatch[]][]; bytes: number }> | null = null
    for (const [lane, leader] of ready) {
      if (held?.has(leader) || this.leadersMerging.has(leader) || sending.has(leader)) continue
      const merge = this.partsToMerge(lane)
      if (merge === null) continue
      jobs ??= new Map()
      const job = jobs.get(leader) ?? { lanes: [], bytes: 0 }
      jobs.set(leader, job)
      job.lanes.push([lane, merge.parts])
      job.bytes += merge.bytes
    }
    if (jobs === null) return
    for (const [leader, { lanes, bytes }] of jobs) {
      this.leadersMerging.add(leader)
      const groups = lanes.map(([, parts]) => parts.map((p) => p.bytes))
      mergeRecordBatchGroups(
        groups,
        (merged) => this.merged(leader, lanes, merged),
        this.mergesOffLoop(bytes),
      )
    }
  }

  /** Off the loop only when it is busy and the job (`bytes` of batches) is big enough to pay for the hop. */
  private mergesOffLoop(bytes: number): boolean {
    if (this.options.mergeOnLoop?.() === true) return false
    return bytes >= this.minOffLoopMergeBytes
  }

  /**
   * A leader's merge is done: each merged batch takes its parts' place in its lane, and its parts
   * are answered with it. A merge that failed leaves its batches to go as they are: all of them
   * when not ours, the first alone when the merged batch grew past the limit (the rest merge again).
   */
  private merged(
    leader: number,
    job: readonly [PartitionLane, PendingBatch[]][],
    merged: (Buffer | null)[],
  ): void {
    this.leadersMerging.delete(leader)
    for (let g = 0; g < job.length; g++) {
      const [lane, parts] = job[g]!
      const bytes = merged[g] ?? null
      if (bytes === null) {
        for (const p of parts) p.alone = true
        continue
      }
      if (bytes.length > this.mergedLimit(lane)) {
        parts[0]!.alone = true
        continue
      }
      let records = 0
      for (const p of parts) records += p.records
      const head = parts[0]!
      const carrier: PendingBatch = {
        index: -1,
        lane,
        bytes,
        records,
        owner: head.owner,
        queuedAt: head.queuedAt,
        seq: -1,
        identity: null,
        sent: false,
        ambiguous: false,
        parts,
        carrier: null,
        alone: false,
      }
      if (!lane.replace(parts, carrier)) continue
      for (const p of parts) p.carrier = carrier
      this.stats.merged += parts.length
    }
    this.schedulePump()
  }

  /**
   * With a linger: the leaders whose batches wait. A leader's batches go at once when its last
   * request was answered and went lingerMs ago or more (a lone request at a low rate pays no
   * linger); otherwise they wait until the oldest has waited lingerMs, or until that last request
   * is answered and lingerMs old, or a lane has maxBatchBytes queued. So at a high rate a broker
   * gets about one request per linger, carrying what came meanwhile. Timers and answers wake the pump.
   */
  private lingering(ready: readonly [PartitionLane, number][]): Set<number> | null {
    const linger = this.options.lingerMs ?? 0
    if (linger === 0 || ready.length === 0) return null
    const now = Date.now()
    // Per leader: when its batches may go (-Infinity: now).
    const oldest = new Map<number, number>()
    for (const [lane, leader] of ready) {
      let since = lane.queuedBytes >= this.maxBatchBytes ? Number.NEGATIVE_INFINITY : lane.queue[0]!.queuedAt
      if (!this.leaderInFlight.get(leader))
        since = Math.min(since, this.leaderSentAt.get(leader) ?? Number.NEGATIVE_INFINITY)
      oldest.set(leader, Math.min(oldest.get(leader) ?? now, since))
    }
    const held = new Set<number>()
    let wake = Number.POSITIVE_INFINITY
    for (const [leader, since] of oldest) {
      const wait = since + linger - now
      if (wait <= 0) continue
      held.add(leader)
      wake = Math.min(wake, wait)
    }
    // A timer already set for later is brought forward (an answer can make a leader's time earlier).
    if (held.size > 0 && (this.lingerTimer === null || now + wake < this.lingerWakeAt)) {
      if (this.lingerTimer !== null) clearTimeout(this.lingerTimer)
      this.lingerWakeAt = now + wake
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = null
        this.schedulePump()
      }, wake)
      this.lingerTimer.unref()
    }
    return held
  }

  /** A Produce request to `leader` is answered or failed (or `count` never got a connection). */
  private leaderDone(leader: number, count = 1): void {
    const left = (this.leaderInFlight.get(leader) ?? 0) - count
    if (left > 0) this.leaderInFlight.set(leader, left)
    else {
      this.leaderInFlight.delete(leader)
      // What lingered behind it goes now.
      if (this.lingerTimer !== null) this.schedulePump()
    }
  }

  /**
   * One connection wait, then the requests written back to back, in order. An attempt gets half
   * the ack deadline: a connection that stops answering is then given up (Cluster.request) with
   * half of it left, for the requests that were in flight on it to be sent again on a fresh one.
   */
  private async dispatch(leader: number, requests: Entry[][]): Promise<void> {
    const deadline = Date.now() + this.options.ackTimeoutMs / 2
    let conn: Connection
    try {
      conn = await this.cluster.connectionTo(leader, deadline)
    } catch (err) {
      const at = this.cluster.current.brokers.get(leader)
      this.noteBrokerFailure(err, at ? `${at.host}:${at.port}` : `node ${leader}`)
      for (const entries of requests) this.requestFailed(entries)
      this.leaderDone(leader, requests.length)
      this.refreshSoon()
      return
    }
    for (const entries of requests) void this.produce(leader, conn, entries, deadline)
  }

  private async produce(leader: number, conn: Connection, entries: Entry[], deadline: number): Promise<void> {
    const data: PartitionRecords[] = entries.map((e) => ({
      topic: e.lane.topic,
      partition: e.lane.partition,
      batch: e.batch.bytes,
    }))
    this.requestsInFlight++
    let results: PartitionResult[]
    try {
      results = await this.cluster.request(
        conn,
        PRODUCE_API,
        () => writeProduceRequest(brokerTimeoutMs(deadline - Date.now()), data),
        parseProduceResponse,
        true,
        deadline,
      )
      this.stats.requests++
    } catch (err) {
      this.requestsInFlight--
      this.leaderDone(leader)
      this.noteBrokerFailure(err, `${conn.host}:${conn.port}`)
      this.requestFailed(entries)
      this.refreshSoon()
      return
    }
    this.requestsInFlight--
    this.leaderDone(leader)
    this.healthy = true
    this.answeredAt = Date.now()
    if (this.failingBrokers.size > 0) this.failingBrokers.delete(`${conn.host}:${conn.port}`)
    let refresh = false
    for (const { lane, batch } of entries) {
      lane.inFlight--
      const code = answerFor(lane, results)
      const fate = code === -1 ? 'retry' : produceFate(code)
      if (fate === 'ok') {
        lane.failures = 0
        lane.acknowledge(batch)
        if (batch.identity === lane.identity) lane.confirmed = true
        this.stats.batches++
        this.stats.records += batch.records
        this.stats.bytes += batch.bytes.length
        this.finish(batch, null)
        if (this.security?.startsWith('Kafka refused')) this.security = null
        if (lane.recovering && lane.inFlight === 0) this.attemptFailed(lane)
      } else if (fate === 'retry') {
        refresh = true
        this.attemptFailed(lane)
      } else if (fate === 'resequence') {
        // Out of order behind a failed batch is expected; for the oldest unacknowledged one it
        // means the broker lost this producer's sequence.
        if (lane.unacked[0] === batch || code !== 45) lane.needsNewIdentity = true
        this.attemptFailed(lane)
      } else {
        const name = kafkaErrorName(code)
        const err =
          fate === 'unauthorized'
            ? this.securityFailed(
                `Kafka refused: ${name} for topic ${lane.topic}; grant the principal of KAFKA_SASL_USERNAME (or the client certificate) Write and Describe on it`,
              )
            : new KafkaRefusedError(
                `Kafka refused the events for ${lane.topic}/${lane.partition}: ${name}`,
                name,
              )
        lane.acknowledge(batch)
        this.finish(batch, err)
        // Its sequence numbers were never written: the batches after it would be out of order.
        lane.needsNewIdentity = true
        this.attemptFailed(lane)
      }
    }
    if (refresh) this.refreshSoon()
    this.schedulePump()
  }

  /** No answer for these batches (connection lost, deadline): they may or may not be written. */
  private requestFailed(entries: Entry[]): void {
    for (const { lane, batch } of entries) {
      lane.inFlight--
      batch.ambiguous = true
      this.attemptFailed(lane)
    }
  }

  /** An attempt of the lane failed: once nothing of it is in flight, send its unacknowledged batches again. */
  private attemptFailed(lane: PartitionLane): void {
    lane.recovering = true
    if (lane.inFlight > 0) return
    lane.failures++
    const backoff = Math.min(25 * 2 ** Math.min(lane.failures, 6), 1000)
    setTimeout(() => void this.recover(lane), lane.failures === 1 ? 0 : backoff).unref()
  }

  private async recover(lane: PartitionLane): Promise<void> {
    if (this.closed || !lane.recovering || lane.inFlight > 0) return
    lane.requeueUnacked()
    if (lane.needsNewIdentity) {
      try {
        const fresh = await this.cluster.initProducerId(Date.now() + this.options.ackTimeoutMs)
        this.stats.possibleDuplicates += lane.restartUnder(fresh)
      } catch (err) {
        // Only this lane waits: the others keep their producer id.
        this.noteBrokerFailure(err, 'InitProducerId')
        lane.failures++
        setTimeout(
          () => void this.recover(lane),
          Math.min(25 * 2 ** Math.min(lane.failures, 6), 1000),
        ).unref()
        return
      }
    }
    lane.recovering = false
    this.schedulePump()
  }

  /**
   * A batch is done: acknowledged (err null), refused for good (the batch's own answer; its
   * send's other batches go on), or adgate itself refused (the whole send fails).
   */
  private finish(p: PendingBatch, err: Error | null): void {
    if (p.parts !== null) {
      // A merged batch's fate is each of its parts': acknowledged, refused or failed together.
      for (const part of p.parts) this.finish(part, err)
      return
    }
    this.pendingBytes -= p.bytes.length
    const owner = p.owner
    owner.left--
    if (err instanceof KafkaRefusedError) {
      owner.refused ??= new Map()
      owner.refused.set(p.index, err)
      if (owner.progress !== null) owner.progress.acked[p.index] = REFUSED
    } else if (err === null && owner.progress !== null) owner.progress.acked[p.index] = ACKED
    if (owner.settled) return
    if (err !== null && !(err instanceof KafkaRefusedError)) owner.reject(err)
    else if (owner.left === 0) owner.resolve()
  }

  private producerIdentity(deadline: number): Promise<ProducerIdentity> {
    if (this.identity) return Promise.resolve(this.identity)
    this.identityRequest ??= this.cluster
      .initProducerId(deadline)
      .then((id) => {
        this.identity = id
        this.schedulePump()
        return id
      })
      .finally(() => {
        this.identityRequest = null
      })
    return this.identityRequest
  }

  /**
   * Metadata again, at most every REFRESH_GAP_MS: a leaderless partition asks at each pump, and
   * must not turn that into a loop of metadata requests while its leader stays gone.
   */
  private refreshSoon(): void {
    if (this.refreshTimer !== null) return
    const wait = Math.max(0, this.refreshAskedAt + REFRESH_GAP_MS - Date.now())
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null
      this.refreshAskedAt = Date.now()
      this.refreshMetadata().then(
        () => this.schedulePump(),
        () => {},
      )
    }, wait)
    this.refreshTimer.unref()
  }

  private refreshMetadata(): Promise<void> {
    this.refreshing ??= this.cluster
      .refresh(Date.now() + Math.min(this.options.ackTimeoutMs, 5000))
      .then((view) => {
        const missing = this.options.topics.filter((t) => !view.leaders.has(t))
        if (missing.length > 0) throw new Error(`topics without metadata: ${missing.join(', ')}`)
        this.refreshedAt = Date.now()
        this.answeredAt = this.refreshedAt
        if (this.security && !this.security.startsWith('Kafka refused')) this.security = null
        if (!this.healthy) this.options.logger.info({ brokers: view.brokers.size }, 'kafka metadata loaded')
        this.healthy = true
      })
      .catch((err: unknown) => {
        this.noteConnectionFailure(err, -1)
        throw err instanceof NotDurableError
          ? err
          : new NotDurableError(`no Kafka broker answered: ${(err as Error).message}`, { cause: err })
      })
      .finally(() => {
        this.refreshing = null
      })
    return this.refreshing
  }

  /**
   * A failure seen outside the sink (topic creation at start-up); true when it is a security problem.
   * A plaintext client that never got an answer also asks whether the listeners speak TLS: a broker
   * closing unanswered connections is a wrong KAFKA_SECURITY_PROTOCOL, not an outage to spool through.
   */
  async observeFailure(err: unknown): Promise<boolean> {
    this.noteConnectionFailure(err, -1)
    if (this.security === null && !this.options.connection.tls && this.refreshedAt === 0) {
      const problem = await plaintextListenerMismatch(this.options.brokers, 2000)
      if (problem) this.securityFailed(problem)
    }
    return this.security !== null
  }

  /**
   * One broker failed a request or a connection: only the partitions it leads wait (their lanes
   * retry, the spool takes their new batches); Kafka as a whole is down only once no broker gives
   * metadata (refreshMetadata), so one broker lost does not send every partition to the spool.
   */
  private noteBrokerFailure(err: unknown, broker: string): void {
    const problem = securityProblem(err)
    if (problem) {
      this.securityFailed(problem)
      return
    }
    if (!this.failingBrokers.has(broker) && !(err instanceof DeadlineError && this.closed)) {
      this.failingBrokers.add(broker)
      this.options.logger.warn({ err, broker }, 'kafka broker request failed; its partitions wait')
    }
  }

  private noteConnectionFailure(err: unknown, leader: number): void {
    const problem = securityProblem(err)
    if (problem) {
      this.securityFailed(problem)
      return
    }
    // A broker answered a moment ago: this failure is one broker's or one connection's (a
    // failover), which its partitions' lanes handle; Kafka is down once none answers.
    if (Date.now() - this.answeredAt < DOWN_AFTER_SILENCE_MS) return
    // One line when Kafka goes from healthy to not ('kafka metadata loaded' marks its return).
    if (this.healthy && !(err instanceof DeadlineError && this.closed))
      this.options.logger.warn({ err, leader }, 'kafka request failed')
    this.healthy = false
  }

  /** Logged once per distinct cause: names the setting to fix. */
  private securityFailed(problem: string): KafkaSecurityError {
    if (this.security !== problem)
      this.options.logger.error({ problem }, 'Kafka rejects adgate: fix the setting named')
    this.security = problem
    this.healthy = false
    return new KafkaSecurityError(problem)
  }

  /** Wait for sends in flight (bounded by the ack timeout), then close connections. */
  async close(): Promise<void> {
    const deadline = Date.now() + this.options.ackTimeoutMs
    while (this.pendingBytes > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    this.closed = true
    if (this.probe) clearInterval(this.probe)
    if (this.refreshTimer) clearTimeout(this.refreshTimer)
    if (this.lingerTimer) clearTimeout(this.lingerTimer)
    await this.cluster.close()
  }
}

/** The error code a Produce response gives the lane's partition; -1 when it gives none. */
function answerFor(lane: PartitionLane, results: readonly PartitionResult[]): number {
  // A linear scan: a request carries one batch per partition of one leader, a few as a rule.
  for (const r of results) if (r.partition === lane.partition && r.topic === lane.topic) return r.errorCode
  return -1
}
