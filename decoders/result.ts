import { type EventType, eventKey } from '../events/catalog.js'
import { type BodyError, bodyError } from '../events/errors.js'
import { derivedEventId } from '../events/event-id.js'
import { threadCpuMs } from './cpu-clock.js'

export type Encoding = 'json' | 'ndjson' | 'csv' | 'avro'

/** One problem of an event: where the bad value is, and why. */
export interface FieldError {
  /** JSON path such as imp[0].banner.format[1].w; null when the event failed as a whole (e.g. a broken NDJSON line). */
  readonly field: string | null
  readonly reason: string
}

/**
 * One invalid event: where it was in the body, every problem found in it, and its raw bytes for
 * the dead-letter topic. `field` and `reason` repeat the first problem (the answer's shape before
 * every problem was listed).
 */
export interface Rejection extends FieldError {
  readonly index: number
  /** In schema order, at most MAX_ERRORS_PER_EVENT, then one marker saying how many more. */
  readonly errors: readonly FieldError[]
  readonly raw: Buffer
}

/** Problems listed per event; a sender fixes them in one round trip, and a hostile body stays cheap. */
export const MAX_ERRORS_PER_EVENT = 20

export function rejection(index: number, errors: readonly FieldError[], raw: Buffer): Rejection {
  const first = errors[0]!
  return { index, field: first.field, reason: first.reason, errors, raw }
}

/** A rejection with one problem (a broken line, a CSV record of the wrong width, an encoder refusal). */
export function singleRejection(index: number, field: string | null, reason: string, raw: Buffer): Rejection {
  return rejection(index, [{ field, reason }], raw)
}

export interface Decoded {
  readonly ok: true
  /** Canonical event objects, valid against the event type's Avro schema. */
  readonly events: object[]
  readonly rejects: Rejection[]
  /**
   * Avro bodies written with adgate's own schema: each event's record bytes as received (parallel
   * to `events`), so framing can splice in the gateway's fields instead of re-encoding.
   */
  readonly records?: Buffer[]
}

export interface Undecodable {
  readonly ok: false
  readonly error: BodyError
}

export type DecodeResult = Decoded | Undecodable

export interface DecodeOptions {
  readonly type: EventType
  /** Bodies holding more events than this are refused as a whole. */
  readonly maxEvents: number
  /** Stamped on every accepted event (epoch ms). */
  readonly ingestTime: number
  /** Name of the API key that sent the events; stamped on every accepted event. */
  readonly source: string
  /**
   * This thread's CPU time (threadCpuMs) past which the decoder stops and refuses the body
   * (BODY_TOO_COSTLY): the per-request CPU budget (ADGATE_REQUEST_CPU_MS). Unset: no budget.
   */
  readonly deadline?: number
}

/**
 * Write the gateway-owned fields, and derive those the sender may leave out (adgate.derived: a bid
 * request posted as its sender has it): the event id from the source and the Kafka key (so a
 * retried request gets the same id and dedups), the event time as the ingest time. Canonical
 * events are fixed-shape objects, so this is a few stores.
 */
export function stamp(event: object, options: DecodeOptions): void {
  const e = event as { ingest_time: number; source: string; event_id?: string; event_time?: number }
  e.ingest_time = options.ingestTime
  e.source = options.source
  if (e.event_id === undefined) e.event_id = derivedEventId(options.source, eventKey(options.type, event))
  if (e.event_time === undefined) e.event_time = options.ingestTime
}

export function tooManyEvents(max: number): Undecodable {
  return {
    ok: false,
    error: bodyError('TOO_MANY_EVENTS', `the body holds more than ${max} events, the limit`),
  }
}

/**
 * The per-request CPU budget, checked every 64 events (reading the clock per event would cost more
 * than some events do). `i` is the event's position in the body.
 */
export function overBudget(options: DecodeOptions, i: number): boolean {
  return (i & 63) === 63 && options.deadline !== undefined && threadCpuMs() > options.deadline
}

export function tooCostly(): Undecodable {
  return {
    ok: false,
    error: bodyError(
      'BODY_TOO_COSTLY',
      'decoding stopped: the body used more than its CPU budget (ADGATE_REQUEST_CPU_MS)',
    ),
  }
}
