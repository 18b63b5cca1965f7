import type { ProgressMarker } from './events.js'

/**
 * The event-time bound of a re-keyed input: the minimum over the upstream partitions of the last
 * watermark each sent in-band. Until every upstream partition has reported, nothing is known
 * (−∞). Idle upstream partitions are left out, as Flink's idleness does, so a quiet partition
 * does not pin state in memory forever.
 */
export interface ProgressState {
  marks: Map<number, { watermark: number; idle: boolean }>
}

export function newProgress(): ProgressState {
  return { marks: new Map() }
}

export function mark(state: ProgressState, m: ProgressMarker): void {
  const prev = state.marks.get(m.from)
  // Markers can repeat after an upstream restart; a watermark never goes back.
  const wm = prev !== undefined && prev.watermark > m.watermark ? prev.watermark : m.watermark
  state.marks.set(m.from, { watermark: wm, idle: m.idle })
}

export function bound(state: ProgressState, upstreamPartitions: number): number {
  if (state.marks.size < upstreamPartitions) return Number.NEGATIVE_INFINITY
  let min = Number.POSITIVE_INFINITY
  for (const m of state.marks.values()) if (!m.idle && m.watermark < min) min = m.watermark
  return min
}
