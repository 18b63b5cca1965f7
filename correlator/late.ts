import { type ClockState, observe, watermark } from './clock.js'
import type { RecordRef } from './events.js'
import { type IdSetState, seen } from './id-set.js'
import type { BatchOutput } from './output.js'

/**
 * The prologue of every join stage: false for an event beyond its stream's grace period (set
 * aside in the late table) or already seen (counted as a duplicate), true for one to join.
 */
export function admit(
  out: BatchOutput,
  ref: RecordRef,
  type: string,
  e: { event_id: string; event_time: number; campaign_id: string | null },
  clock: ClockState,
  ids: IdSetState,
  graceMs: number,
  wallNow: number,
): boolean {
  if (observe(clock, e.event_time, graceMs, wallNow)) {
    late(out, ref, type, e.event_id, e.event_time, watermark(clock, graceMs), e.campaign_id)
    return false
  }
  if (seen(ids, e.event_id, e.event_time)) {
    out.duplicate()
    return false
  }
  return true
}

/** Sets an event aside as late: written with its raw bytes to the late table, never counted. */
export function late(
  out: BatchOutput,
  ref: RecordRef,
  type: string,
  eventId: string,
  time: number,
  wm: number,
  campaign: string | null,
): void {
  out.lateEvent({
    topic: ref.topic,
    partition: ref.partition,
    offset: ref.offset,
    event_type: type,
    event_id: eventId,
    event_time: time,
    watermark: wm,
    campaign_id: campaign,
    value: ref.value,
  })
}
