/**
 * Event time of one input partition. An event is *late* when it is older than the newest event
 * seen before it on the same partition minus the grace period. Deciding lateness per partition,
 * from the partition's own order, makes it deterministic: the same log gives the same decisions on
 * any instance, after any restart, in any interleaving with other partitions.
 *
 * The watermark (newest − grace) also bounds the future: every event still to come on this
 * partition that is not late has time ≥ watermark. Joins expire state with that bound.
 */
export interface ClockState {
  max: number
  /** Wall-clock ms of the last record; with the source's ends, drives idleness, not results. */
  lastSeenWall: number
  idle: boolean
}

export function newClock(): ClockState {
  return { max: Number.NEGATIVE_INFINITY, lastSeenWall: 0, idle: false }
}

export function watermark(clock: ClockState, graceMs: number): number {
  return clock.max - graceMs
}

/**
 * The bound used to expire state: an idle partition no longer holds it back. A partition turns
 * idle (Pipeline.tick) only when it is read to its end and has had no record for the idle timeout.
 */
export function expiryWatermark(clock: ClockState, graceMs: number): number {
  return clock.idle ? Number.POSITIVE_INFINITY : clock.max - graceMs
}

/** Returns true when the event is late; otherwise advances the clock. */
export function observe(clock: ClockState, eventTime: number, graceMs: number, wallNow: number): boolean {
  clock.lastSeenWall = wallNow
  clock.idle = false
  if (eventTime < clock.max - graceMs) return true
  if (eventTime > clock.max) clock.max = eventTime
  return false
}
