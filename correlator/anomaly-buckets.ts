// What one bucket of ingest time accumulates per subject (a campaign or a source), as the anomaly
// detector (anomaly.ts) observes events; judged when the bucket closes.

export type EventKind = 'bid' | 'impression' | 'click' | 'conversion'
export const KINDS: readonly EventKind[] = ['bid', 'impression', 'click', 'conversion']
const SAMPLE_CAP = 512

export class Acc {
  readonly counts = [0, 0, 0, 0]
  clicksNoImpression = 0
  delays: number[] = []
  ages: number[] = []
  /** A campaign's counts per source, to tell whether a flagged source explains its flag. */
  bySource: Map<string, number[]> | null = null
}

/** The start of the bucket holding `time`. */
export function bucketOf(time: number, bucketMs: number): number {
  return time - (((time % bucketMs) + bucketMs) % bucketMs)
}

export function sample(list: number[], v: number, seen: number): void {
  // Reservoir-free cap: the first SAMPLE_CAP samples of a bucket stand for it (medians only).
  if (seen <= SAMPLE_CAP) list.push(v)
}
