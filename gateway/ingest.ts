import type { Logger } from '../config/logger.js'
import { DLQ_TOPIC, EVENT_INFO } from '../events/catalog.js'
import { type EventSink, NotDurableError, type OutRecord } from '../kafka/producer.js'
import type { BodyOutcome } from '../workers/decode-task.js'
import type { DecodePool, DecodeRequest } from '../workers/pool.js'
import type { GatewayMetrics } from './metrics.js'
import { errorReply, jsonReply, type Reply } from './responses.js'

/** A body to ingest; its ingestTime (receipt, epoch ms) is stamped on every event. */
export type IngestInput = DecodeRequest

/**
 * One body in, one answer out, the same for HTTP and WebSocket: decode in a worker, write the
 * accepted events and the dead letters to Kafka, and answer only once Kafka has acknowledged them.
 * 200: all durable. 207: the valid ones durable, the rest listed and dead-lettered. 503: none accepted.
 */
export class IngestService {
  private draining = false

  constructor(
    private readonly pool: DecodePool,
    private readonly sink: EventSink,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  get ready(): boolean {
    return !this.draining && this.sink.ready
  }

  startDraining(): void {
    this.draining = true
  }

  async ingest(input: IngestInput): Promise<Reply> {
    const { type, encoding, requestId } = input
    if (this.draining) return errorReply('DRAINING', 'the gateway is shutting down', requestId)
    if (!this.sink.ready)
      return errorReply('NOT_DURABLE', 'Kafka is unavailable or too far behind', requestId)

    let outcome: BodyOutcome
    let values: Buffer
    try {
      ;({ outcome, values } = await this.pool.decode(input))
    } catch (err) {
      this.logger.error({ err: (err as Error).message, requestId }, 'decode failed in the worker pool')
      return errorReply(
        'WORKER_FAILED',
        'the request could not be decoded inside the gateway; retry',
        requestId,
      )
    }

    const headers = {
      'adgate.source': input.source,
      'adgate.request_id': requestId,
      'adgate.encoding': encoding,
    }
    const deadLetters: OutRecord[] = []
    for (let i = outcome.events * 2; i < outcome.spans.length; i += 2) {
      deadLetters.push({
        key: null,
        value: values.subarray(outcome.spans[i]!, outcome.spans[i + 1]!),
        headers,
      })
    }
    const errors = outcome.rejects

    if (outcome.error !== null || outcome.events === 0) {
      // Nothing to accept: answer now; the dead letters go to Kafka without holding the client.
      this.sink.send(DLQ_TOPIC, deadLetters).catch((err) => {
        this.logger.warn({ err: (err as Error).message, requestId }, 'dead letters not written')
      })
      this.metrics.events.inc({ type, encoding, outcome: 'rejected' }, Math.max(1, errors.length))
      if (outcome.error !== null) return errorReply(outcome.error.code, outcome.error.detail, requestId)
      return errorReply('ALL_EVENTS_INVALID', `all ${errors.length} events are invalid`, requestId, {
        accepted: 0,
        rejected: errors.length,
        errors,
      })
    }

    const records: OutRecord[] = new Array(outcome.events)
    for (let i = 0; i < outcome.events; i++) {
      records[i] = {
        key: outcome.keys[i]!,
        value: values.subarray(outcome.spans[2 * i]!, outcome.spans[2 * i + 1]!),
        headers,
      }
    }
    try {
      const topic = EVENT_INFO[type].topic
      await (deadLetters.length === 0
        ? this.sink.send(topic, records)
        : Promise.all([this.sink.send(topic, records), this.sink.send(DLQ_TOPIC, deadLetters)]))
    } catch (err) {
      const detail = err instanceof NotDurableError ? err.message : `unexpected: ${(err as Error).message}`
      this.metrics.events.inc({ type, encoding, outcome: 'failed' }, outcome.events)
      return errorReply('NOT_DURABLE', detail, requestId)
    }
    this.metrics.durableDuration.observe((Date.now() - input.ingestTime) / 1000)
    this.metrics.events.inc({ type, encoding, outcome: 'accepted' }, outcome.events)
    if (errors.length === 0)
      return jsonReply(200, { accepted: outcome.events, rejected: 0, request_id: requestId })
    this.metrics.events.inc({ type, encoding, outcome: 'rejected' }, errors.length)
    return jsonReply(207, {
      accepted: outcome.events,
      rejected: errors.length,
      errors,
      request_id: requestId,
    })
  }
}
