import type { ErrorCode } from '../events/errors.js'
import {
  type BatchSink,
  KafkaRefusedError,
  KafkaSecurityError,
  NotDurableError,
} from '../kafka/batch-sink.js'
import { type Spool, SpoolFullError } from '../spool/spool.js'
import type { TaskOutput } from '../workers/pool.js'

export type Destination = 'kafka' | 'spool'

/**
 * Where a task's batches become durable, decided per task:
 *   - no Kafka configured (embedded mode): the spool, which the in-process correlator reads;
 *   - Kafka down, or the spool still holding older batches (they must reach Kafka first, to keep
 *     each partition in order): the spool, which the replayer drains;
 *   - otherwise Kafka; if it has not acknowledged within `spoolAfterMs` (or failed retriably), the
 *     spool. The Kafka attempt may still land later: a duplicate, which consumers dedup by event_id
 *     (counted in `possibleDuplicates`);
 *   - never the spool for what Kafka refuses for good (too large, invalid) or while Kafka rejects
 *     adgate's credentials, certificates or ACLs: a 200 from the spool would only hide it.
 * Resolves with where the batches are durable; rejects with NotDurableError (503) otherwise.
 */
export class Delivery {
  /** Tasks, and their records (events and dead letters), made durable per destination: for metrics. */
  readonly counts: Record<Destination, number> = { kafka: 0, spool: 0 }
  readonly records: Record<Destination, number> = { kafka: 0, spool: 0 }
  /** Records spooled while their direct Kafka attempt was still pending: they may reach Kafka twice. */
  possibleDuplicates = 0

  constructor(
    private readonly sink: BatchSink | null,
    private readonly spool: Spool | null,
    private readonly spoolAfterMs: number,
  ) {}

  get ready(): boolean {
    if (this.sink?.securityFailure) return false
    return (this.sink?.ready ?? false) || (this.spool !== null && !this.spool.full)
  }

  async deliver(task: TaskOutput): Promise<Destination> {
    const { sink, spool } = this
    if (sink === null) return this.toSpool(task)
    const refusal = sink.refusal(task)
    if (refusal) throw refusal
    if (spool !== null && !sink.securityFailure && (spool.inUse || !sink.ready)) return this.toSpool(task)
    if (spool === null || sink.securityFailure) {
      await sink.send(task)
      return this.count('kafka', task)
    }
    const direct = sink.send(task)
    let timer: NodeJS.Timeout | undefined
    const slow = new Promise<'slow'>((resolve) => {
      timer = setTimeout(() => resolve('slow'), this.spoolAfterMs)
    })
    try {
      if ((await Promise.race([direct, slow])) !== 'slow') return this.count('kafka', task)
      direct.catch(() => {}) // it may still land; the spooled copy is the one we vouch for
      for (const b of task.batches) this.possibleDuplicates += b.records
    } catch (err) {
      if (err instanceof KafkaRefusedError || err instanceof KafkaSecurityError) throw err
    } finally {
      clearTimeout(timer)
    }
    return this.toSpool(task)
  }

  private async toSpool(task: TaskOutput): Promise<Destination> {
    if (this.spool === null) throw new NotDurableError('Kafka is unavailable and there is no local spool')
    try {
      await this.spool.append(task)
    } catch (err) {
      if (err instanceof SpoolFullError) throw new NotDurableError(`Kafka is unavailable and ${err.message}`)
      throw new NotDurableError(`the local spool could not write: ${(err as Error).message}`)
    }
    return this.count('spool', task)
  }

  private count(d: Destination, task: TaskOutput): Destination {
    this.counts[d]++
    for (const b of task.batches) this.records[d] += b.records
    return d
  }
}

/** The error-table code a failed delivery is answered with. */
export function deliveryErrorCode(err: unknown): ErrorCode {
  if (err instanceof KafkaRefusedError) return err.tooLarge ? 'EVENTS_TOO_LARGE_FOR_KAFKA' : 'KAFKA_REFUSED'
  if (err instanceof KafkaSecurityError) return 'KAFKA_UNAUTHORIZED'
  return 'NOT_DURABLE'
}
