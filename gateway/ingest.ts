import type { Logger } from '../config/logger.js'
import { EVENT_INFO } from '../events/catalog.js'
import { NotDurableError } from '../kafka/batch-sink.js'
import type { BodyOutcome } from '../workers/decode-task.js'
import type { DecodePool, DecodeRequest, TaskOutput } from '../workers/pool.js'
import { type Delivery, deliveryErrorCode, type Refusals } from './delivery.js'
import type { GatewayMetrics } from './metrics.js'
import type { GatewayQuality } from './quality.js'
import type { RefusedWork } from './refused-work.js'
import { errorReply, jsonPartsReply, type Reply } from './responses.js'

/**
 * A body to ingest; its ingestTime (receipt, epoch ms) is stamped on every event. `client` is who
 * is charged for refused work (refused-work.ts): the API key, or the address without keys;
 * unset: the source key's name.
 */
export type IngestInput = DecodeRequest & { readonly client?: string }

/**
 * One body in, one answer out, the same for HTTP and WebSocket: decode in a worker (which also
 * encodes the Kafka batches), deliver the task's batches once, and answer only once they are
 * durable (acknowledged by Kafka, or fsynced to the local spool; see delivery.ts). 200: all durable. 207: the valid ones durable, the rest listed and
 * dead-lettered. 503: none accepted.
 */
export class IngestService {
  private isDraining = false
  /** Set while the start-up warm-up runs (server.ts): not ready, though requests are served. */
  warming = false

  constructor(
    private readonly pool: DecodePool,
    private readonly delivery: Delivery,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
    private readonly quality: GatewayQuality | null = null,
    private readonly refused: RefusedWork | null = null,
  ) {}

  get ready(): boolean {
    return !this.isDraining && !this.warming && this.delivery.ready
  }

  get draining(): boolean {
    return this.isDraining
  }

  startDraining(): void {
    this.isDraining = true
  }

  /** The answer for a request that cannot be taken now (draining, Kafka refusing or out of reach), else null. */
  refusal(requestId: string): Reply | null {
    if (this.isDraining)
      return errorReply('DRAINING', 'the gateway is shutting down; retry on another instance', requestId)
    const why = this.delivery.unavailable
    return why === null ? null : errorReply(why.code, why.detail, requestId)
  }

  async ingest(input: IngestInput): Promise<Reply> {
    const { type, encoding, requestId } = input
    const refused = this.refusal(requestId)
    if (refused !== null) return refused

    const client = input.client ?? input.source
    if (this.refused !== null && this.refused.waitMs(client) > 0) {
      // This client's refused work is over its share: its body waits (spending no CPU) or,
      // when it already has bodies waiting, is refused now.
      const turn = await this.refused.turn(client)
      if (turn.go && turn.waited) this.metrics.refusedWorkDelays.inc({ result: 'waited' })
      if (!turn.go) {
        this.metrics.refusedWorkDelays.inc({ result: 'refused' })
        return errorReply(
          'RATE_LIMITED',
          `${client} spent its share of decode time on refused bodies (ADGATE_REFUSED_CPU_MS_PER_S)`,
          requestId,
          {},
          { 'Retry-After': String(Math.ceil(turn.retryAfterMs / 1000)) },
        )
      }
    }

    // A client on probation for refused work, or whose bodies in flight may cost more than its
    // free share, is decoded apart (workers/probation-lane.ts).
    const bytes = input.body.length // the pool takes the body over
    const admitted = this.refused?.admit(client, bytes) ?? null
    if (admitted?.apart) this.metrics.probationBodies.inc()
    const request = admitted?.apart ? { ...input, probation: client } : input
    let outcome: BodyOutcome
    let rejectsJson: Buffer | null
    let task: TaskOutput
    try {
      ;({ outcome, rejectsJson, task } = await this.pool.decode(request))
    } catch (err) {
      if (admitted !== null) this.refused!.settle(client, admitted, bytes, null)
      this.logger.error({ err, requestId }, 'decode failed in the worker pool')
      return errorReply(
        'WORKER_FAILED',
        'the request could not be decoded inside the gateway; retry',
        requestId,
      )
    }
    const delivered = this.deliver(task)
    const charged = refusedMs(outcome)
    if (admitted !== null) {
      this.refused!.settle(client, admitted, bytes, charged)
      if (charged > 0) this.metrics.refusedWork.inc(charged / 1000)
    }
    this.quality?.observe(input.source, type, outcome)
    const { rejected } = outcome
    const { metrics } = this
    const counted = metrics.series.events(type, encoding)

    if (outcome.error !== null || outcome.events === 0) {
      // Nothing to accept: answer now; the dead letters ride with the task's batches.
      const deadLetters = Math.max(1, rejected)
      const reason = outcome.error?.code ?? 'INVALID_EVENT'
      counted.rejected.inc(deadLetters)
      metrics.rejected.inc({ type, encoding, reason }, deadLetters)
      delivered.then(
        () => counted.deadLetters.inc(deadLetters),
        () => {},
      )
      if (outcome.error !== null) return errorReply(outcome.error.code, outcome.error.detail, requestId)
      const reply = errorReply('ALL_EVENTS_INVALID', `all ${rejected} events are invalid`, requestId, {
        accepted: 0,
        rejected,
      })
      // `errors` last, as the error body's extra fields: {"error":…,…,"rejected":N,"errors":[…]}
      return jsonPartsReply(reply, [reply.body.slice(0, -1), ',"errors":', rejectsJson!, '}'])
    }
    let failure: unknown = null
    try {
      // A task carries several requests' batches: only a refusal of this request's topic is its own.
      failure = (await delivered).get(EVENT_INFO[type].topic) ?? null
    } catch (err) {
      failure = err
    }
    if (failure !== null) {
      // The whole request is answered 413/503: its invalid events too.
      counted.failed.inc(outcome.events + rejected)
      return errorReply(deliveryErrorCode(failure), (failure as Error).message, requestId)
    }
    metrics.series.durableDuration.observe((Date.now() - input.ingestTime) / 1000)
    counted.accepted.inc(outcome.events)
    // Written out, as the 207 below: cheaper than JSON.stringify of an object per request.
    if (rejected === 0)
      return {
        status: 200,
        body: `{"accepted":${outcome.events},"rejected":0,"request_id":${JSON.stringify(requestId)}}`,
      }
    counted.rejected.inc(rejected)
    counted.invalid.inc(rejected)
    counted.deadLetters.inc(rejected)
    return jsonPartsReply({ status: 207 }, [
      `{"accepted":${outcome.events},"rejected":${rejected},"errors":`,
      rejectsJson!,
      `,"request_id":${JSON.stringify(requestId)}}`,
    ])
  }

  /** The task's batches go to Kafka once, whichever of its requests gets here first. */
  private deliver(task: TaskOutput): Promise<Refusals> {
    if (task.delivery === undefined) {
      task.delivery = task.batches.length === 0 ? Promise.resolve(new Map()) : this.delivery.deliver(task)
      task.delivery.catch((err: Error) => {
        if (!(err instanceof NotDurableError)) this.logger.error({ err }, 'delivery failed unexpectedly')
      })
    }
    return task.delivery
  }
}

/** The decode time of a body spent on what was refused: all of it, or the rejected events' share. */
function refusedMs(outcome: BodyOutcome): number {
  const { rejected } = outcome
  if (outcome.error !== null || outcome.events === 0) return outcome.cpuMs
  return rejected === 0 ? 0 : (outcome.cpuMs * rejected) / (rejected + outcome.events)
}
