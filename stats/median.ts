// The median, written once for the correlator's anomaly detector and the tools' statistics
// (bench/lib/stats.ts): the bottom layer, so both may import it.

/** The median of unsorted values: the middle one, or the mean of the middle two; NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const s = Float64Array.from(values).sort()
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
