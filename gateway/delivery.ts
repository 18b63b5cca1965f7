import type { ErrorCode } from '../events/errors.js'
import {
  ACKED,
  type BatchSet,
  type BatchSink,
  KafkaRefusedError,
  KafkaSecurityError,
  NotDurableError,
  REFUSED,
  type SendProgress,
} from '../kafka/batch-sink.js'
import { PartitionCounts } from '../spool/partition-counts.js'
import { type Spool, SpoolFullError } from '../spool/spool.js'

export type Destination = 'kafka' | 'spool'

/** Topics of a task whose batches Kafka will never take, with why; the task's other batches were delivered. */
export type Refusals = ReadonlyMap<string, KafkaRefusedError>

const NO_REFUSALS: Refusals = new Map()

/**
 * Where a task's batches become durable, decided per topic-partition:
 *   - no Kafka configured (embedded mode): the spool, which the in-process correlator reads;
 *   - Kafka down: the spool, which the replayer drains;
 *   - a partition whose leader is gone or whose last attempt failed, or that the spool still holds
 *     batches of (they must reach Kafka first, to keep the partition in order): the spool; the
 *     other partitions keep going directly to Kafka (a partial outage spools only its partitions);
 *   - otherwise Kafka; batches it has not acknowledged within `spoolAfterMs` (or failed
 *     retriably) go to the spool. Their Kafka attempt may still land later: a duplicate, which
 *     consumers dedup by event_id (counted in `possibleDuplicates`). While a partition has such
 *     direct attempts pending, its new batches follow them to Kafka, so the spool gets a
 *     partition's batches in the order they were sent;
 *   - never the spool for what Kafka refuses for good (too large, invalid) or while Kafka rejects
 *     adgate's credentials, certificates or ACLs: a 200 from the spool would only hide it. A batch
 *     over its own topic's max.message.bytes is refused alone: the task's other topics go on.
 * Resolves with the refused topics once the rest is durable; rejects with NotDurableError (503).
 */
export class Delivery {
  /** Deliveries (a task's batches per destination), and their records (events and dead letters): for metrics. */
  readonly counts: Record<Destination, number> = { kafka: 0, spool: 0 }
  readonly records: Record<Destination, number> = { kafka: 0, spool: 0 }
  /** Records spooled while their direct Kafka attempt was still pending: they may reach Kafka twice. */
  possibleDuplicates = 0
  /** Batches sent directly and not yet acknowledged or spooled, per topic-partition. */
  private readonly direct = new PartitionCounts()

  constructor(
    private readonly sink: BatchSink | null,
    private readonly spool: Spool | null,
    private readonly spoolAfterMs: number,
  ) {}

  get ready(): boolean {
    return this.unavailable === null
  }

  /**
   * Why events cannot be made durable now, as the error-table code and detail a request gets
   * before anything of it is produced; null when they can.
   */
  get unavailable(): { code: ErrorCode; detail: string } | null {
    const security = this.sink?.securityFailure
    if (security) return { code: 'KAFKA_UNAUTHORIZED', detail: security }
    if (this.sink?.ready || (this.spool !== null && !this.spool.full)) return null
    return {
      code: 'NOT_DURABLE',
      detail:
        this.spool === null
          ? 'Kafka is unavailable and there is no local spool'
          : 'Kafka is unavailable and the local spool is full',
    }
  }

  async deliver(task: BatchSet): Promise<Refusals> {
    const { sink, spool } = this
    if (sink === null) {
      await this.toSpool(task)
      return NO_REFUSALS
    }
    const refusals = new Map<string, KafkaRefusedError>()
    for (const b of task.batches) {
      const refused = sink.batchRefusal(b)
      if (refused) refusals.set(b.topic, refused)
    }
    const set = refusals.size === 0 ? task : subset(task, (b) => !refusals.has(b.topic))
    if (set.batches.length > 0) {
      if (spool === null || sink.securityFailure) {
        const progress = newProgress(set)
        await sink.send(set, progress)
        this.count(
          'kafka',
          subset(set, (_, i) => progress.acked[i] === ACKED),
        )
        refusedTopics(set, progress, refusals)
      } else if (!sink.ready) await this.toSpool(set)
      else await this.route(set, refusals)
    }
    return refusals
  }

  /** Each partition's batches to Kafka or to the spool (see the class comment). */
  private async route(set: BatchSet, refusals: Map<string, KafkaRefusedError>): Promise<void> {
    const sink = this.sink!
    const spool = this.spool!
    let toSpool = 0
    const spooled = set.batches.map((b) => {
      const held =
        !this.direct.has(b.topic, b.partition) &&
        (spool.holds(b.topic, b.partition) || !sink.available(b.topic, b.partition))
      if (held) toSpool++
      return held
    })
    if (toSpool === 0) return this.sendDirect(set, refusals)
    const later = this.toSpool(subset(set, (_, i) => spooled[i]!))
    if (toSpool === set.batches.length) return later
    await Promise.all([
      later,
      this.sendDirect(
        subset(set, (_, i) => !spooled[i]),
        refusals,
      ),
    ])
  }

  /**
   * To Kafka; what it has not acknowledged within spoolAfterMs (or failed retriably) to the spool;
   * what it refused for good is added to `refusals` (never spooled).
   */
  private async sendDirect(set: BatchSet, refusals: Map<string, KafkaRefusedError>): Promise<void> {
    const sink = this.sink!
    const progress = newProgress(set)
    for (const b of set.batches) this.direct.add(b.topic, b.partition, 1)
    const direct = sink.send(set, progress)
    let timer: NodeJS.Timeout | undefined
    const slow = new Promise<'slow'>((resolve) => {
      timer = setTimeout(() => resolve('slow'), this.spoolAfterMs)
    })
    let spooling: Promise<void>
    try {
      if ((await Promise.race([direct, slow])) !== 'slow') {
        this.count(
          'kafka',
          progress.refused.size === 0 ? set : subset(set, (_, i) => progress.acked[i] === ACKED),
        )
        refusedTopics(set, progress, refusals)
        return
      }
      direct.catch(() => {}) // it may still land; the spooled copy is the one we vouch for
      spooling = this.spoolUnacked(set, progress.acked, true)
    } catch (err) {
      if (err instanceof KafkaRefusedError || err instanceof KafkaSecurityError) throw err
      spooling = this.spoolUnacked(set, progress.acked, false)
    } finally {
      clearTimeout(timer)
      // After the spool append began: the spool holds these partitions from now on.
      for (const b of set.batches) this.direct.add(b.topic, b.partition, -1)
    }
    refusedTopics(set, progress, refusals)
    await spooling
  }

  /** The batches Kafka has neither acknowledged nor refused go to the spool; the acknowledged ones are named if that fails. */
  private spoolUnacked(set: BatchSet, acked: Uint8Array, pending: boolean): Promise<void> {
    const rest = subset(set, (_, i) => acked[i] === 0)
    if (rest.batches.length === 0) return Promise.resolve()
    if (pending) for (const b of rest.batches) this.possibleDuplicates += b.records
    if (rest.batches.length < set.batches.length)
      this.count(
        'kafka',
        subset(set, (_, i) => acked[i] === ACKED),
      )
    return this.toSpool(rest).catch((err: NotDurableError) => {
      if (rest.batches.length === set.batches.length) throw err
      const written = set.batches.filter((_, i) => acked[i] === ACKED).map((b) => `${b.topic}/${b.partition}`)
      throw new NotDurableError(`${err.message}; the events for ${written.join(', ')} were written to Kafka`)
    })
  }

  private async toSpool(set: BatchSet): Promise<void> {
    if (this.spool === null) throw new NotDurableError('Kafka is unavailable and there is no local spool')
    try {
      await this.spool.append(set)
    } catch (err) {
      if (err instanceof SpoolFullError) throw new NotDurableError(`Kafka is unavailable and ${err.message}`)
      throw new NotDurableError(`the local spool could not write: ${(err as Error).message}`)
    }
    this.count('spool', set)
  }

  private count(d: Destination, set: BatchSet): void {
    this.counts[d]++
    for (const b of set.batches) this.records[d] += b.records
  }
}

function newProgress(set: BatchSet): SendProgress {
  return { acked: new Uint8Array(set.batches.length), refused: new Map() }
}

/**
 * The topics Kafka refused a batch of, into `refusals`. A topic's requests are answered with the
 * refusal; the answer names the topic's other partitions, whose batches were taken (by Kafka, or
 * by the spool on their way to it), since those events will appear (a refusal otherwise means
 * none of the request's events do).
 */
function refusedTopics(
  set: BatchSet,
  progress: SendProgress,
  refusals: Map<string, KafkaRefusedError>,
): void {
  for (const [i, err] of progress.refused) {
    const topic = set.batches[i]!.topic
    if (refusals.has(topic)) continue
    const written = set.batches
      .filter((b, k) => b.topic === topic && progress.acked[k] !== REFUSED)
      .map((b) => `${b.topic}/${b.partition}`)
    refusals.set(
      topic,
      written.length === 0
        ? err
        : new KafkaRefusedError(
            `${err.message}; the events for ${written.join(', ')} were accepted and will appear in Kafka`,
            err.kafkaError,
          ),
    )
  }
}

/** The batches of a set that pass `keep` (same buffer, no copy). */
function subset(set: BatchSet, keep: (b: BatchSet['batches'][number], i: number) => boolean): BatchSet {
  return { buffer: set.buffer, batches: set.batches.filter(keep) }
}

/** The error-table code a failed delivery is answered with. */
export function deliveryErrorCode(err: unknown): ErrorCode {
  if (err instanceof KafkaRefusedError) return err.tooLarge ? 'EVENTS_TOO_LARGE_FOR_KAFKA' : 'KAFKA_REFUSED'
  if (err instanceof KafkaSecurityError) return 'KAFKA_UNAUTHORIZED'
  return 'NOT_DURABLE'
}
