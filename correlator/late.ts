import type { RecordRef } from './events.js'
import type { BatchOutput } from './output.js'

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
