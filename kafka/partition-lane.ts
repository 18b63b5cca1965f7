import type { KafkaRefusedError, SendProgress } from './batch-sink.js'
import type { ProducerIdentity } from './idempotence.js'

/** One send() call: its batches, its answer, and the bytes it holds against the memory bound. */
export interface SendState {
  /** Batches not yet acknowledged or refused. */
  left: number
  settled: boolean
  readonly batches: PendingBatch[]
  /** Each batch's state, for the caller (null: the caller does not ask). */
  readonly progress: SendProgress | null
  /** The batches Kafka refused for good (null until one is). */
  refused: Map<number, KafkaRefusedError> | null
  resolve(): void
  reject(err: Error): void
}

/**
 * One pre-encoded batch on its way to its partition's leader: a send()'s own, or several of them
 * merged into one when first sent (kafka/protocol/batch-merge.ts), which then stands for its parts.
 */
export interface PendingBatch {
  /** Its index in the send() it belongs to (-1 for a merged batch: its parts have theirs). */
  readonly index: number
  readonly lane: PartitionLane
  readonly bytes: Buffer
  readonly records: number
  readonly owner: SendState
  /** When its send() queued it (epoch ms), for the linger. */
  readonly queuedAt: number
  /** Base sequence under `identity`; -1 until first sent (a batch never sent holds no sequence). */
  seq: number
  identity: ProducerIdentity | null
  /** Sent at least once: it may be in the log even if no answer said so. */
  sent: boolean
  /** An attempt ended without an answer (connection lost, timeout): it may have been written. */
  ambiguous: boolean
  /** A merged batch's parts, in order (each answered with it); null for a send()'s own batch. */
  readonly parts: readonly PendingBatch[] | null
  /** The merged batch that carries this one to Kafka, once merged. */
  carrier: PendingBatch | null
  /** Sent as it is, never merged: its merge failed (not one of ours, or grown past the limit). */
  alone: boolean
}

/**
 * The idempotent producer's state for one topic-partition. Batches get their sequence numbers
 * when first sent, in send order; at most `maxInFlight` requests carry a partition at once. When
 * an attempt fails, the lane stops sending new batches, waits until nothing of it is in flight,
 * then sends every unacknowledged batch again with its own sequence number, in order, ahead of
 * newer ones: so a retry never reorders a partition, and the broker drops a batch it already has
 * (DUPLICATE_SEQUENCE_NUMBER). When the broker has lost the sequence (OUT_OF_ORDER for the
 * oldest unacknowledged batch, UNKNOWN_PRODUCER_ID) or a batch was refused (its sequence would be
 * a gap), the lane starts again from sequence 0 under a new producer id.
 */
export class PartitionLane {
  identity: ProducerIdentity | null = null
  nextSeq = 0
  /** Waiting to be sent (again), in order: retries first. Changed only by the methods below. */
  readonly queue: PendingBatch[] = []
  /** Bytes of the batches in `queue`, kept as it changes (the linger asks at every pump). */
  queuedBytes = 0
  /** Sent and not yet acknowledged, in sequence order. */
  unacked: PendingBatch[] = []
  inFlight = 0
  recovering = false
  needsNewIdentity = false
  /** Consecutive failed attempts, for the retry back-off. */
  failures = 0
  /**
   * A batch under the current producer id was acknowledged. Until then only one batch is in
   * flight: a broker with no state for this producer on the partition takes any first sequence
   * (KIP-360), so a first batch refused retriably while its successors were written would be
   * written behind them. Once the broker holds the sequence, it refuses gaps (OUT_OF_ORDER).
   */
  confirmed = false

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  /** An attempt failed and the batches it carried are not acknowledged yet. */
  get failing(): boolean {
    return this.recovering || (this.failures > 0 && this.unacked.length + this.queue.length > 0)
  }

  /** Batches it may have in flight: `limit`, or one until the broker holds its sequence. */
  maxInFlight(limit: number): number {
    return this.confirmed ? limit : 1
  }

  get canSend(): boolean {
    return this.queue.length > 0 && !this.recovering && this.identity !== null
  }

  enqueue(p: PendingBatch): void {
    this.queue.push(p)
    this.queuedBytes += p.bytes.length
  }

  /** The first batch waiting, taken off the queue. */
  takeFirst(): PendingBatch {
    const p = this.queue.shift()!
    this.queuedBytes -= p.bytes.length
    return p
  }

  /** Batches taken off and not sent after all: back at the head, in order. */
  putBack(batches: readonly PendingBatch[]): void {
    this.queue.unshift(...batches)
    for (const p of batches) this.queuedBytes += p.bytes.length
  }

  /**
   * Never-sent batches merged off the event loop: the merged batch takes their place, if they are
   * all still waiting, in order (false when a deadline withdrew some meanwhile).
   */
  replace(parts: readonly PendingBatch[], merged: PendingBatch): boolean {
    const i = this.queue.indexOf(parts[0]!)
    if (i < 0) return false
    for (let k = 1; k < parts.length; k++) if (this.queue[i + k] !== parts[k]) return false
    this.queue.splice(i, parts.length, merged)
    for (const p of parts) this.queuedBytes -= p.bytes.length
    this.queuedBytes += merged.bytes.length
    return true
  }

  /** The batches from position `i` on, taken off the queue (a merged one stands for its parts). */
  dropFrom(i: number): PendingBatch[] {
    const dropped = this.queue.splice(i)
    for (const p of dropped) this.queuedBytes -= p.bytes.length
    return dropped
  }

  acknowledge(p: PendingBatch): void {
    const i = this.unacked.indexOf(p)
    if (i >= 0) this.unacked.splice(i, 1)
  }

  /** After a failure, once nothing is in flight: unacknowledged batches go first, in order. */
  requeueUnacked(): void {
    this.putBack(this.unacked)
    this.unacked = []
  }

  /** A new producer id: sequences start again at 0; batches that were sent get new sequences. */
  restartUnder(identity: ProducerIdentity): number {
    this.identity = identity
    this.nextSeq = 0
    this.confirmed = false
    let mayBeWritten = 0
    for (const p of this.queue) {
      if (p.ambiguous) mayBeWritten += p.records
      p.seq = -1
      p.identity = null
    }
    this.needsNewIdentity = false
    return mayBeWritten
  }
}
