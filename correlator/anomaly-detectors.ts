import { median } from '../stats/median.js'
import type { AnomalyOptions } from './anomaly-options.js'
import { binomialBand } from './binomial.js'

// The three detectors of the anomaly detector (anomaly.ts), one per kind of series: volumes,
// ratios and medians. Each judges a closed bucket's value against the band of its series' past,
// and feeds the value to the series unless it was anomalous.

/** Past values of one series: what its band is computed from. */
export class Series {
  n = 0
  level = 0
  num = 0
  den = 0
  history: number[] = []
  streak = 0

  reset(): void {
    this.n = 0
    this.level = 0
    this.num = 0
    this.den = 0
    this.history = []
    this.streak = 0
  }

  remember(v: number): void {
    this.history.push(v)
    if (this.history.length > 30) this.history.shift()
  }

  /** Flag bookkeeping shared by the detectors: returns whether the value may feed the baseline. */
  settle(anomalous: boolean, relearnAfter: number): boolean {
    if (!anomalous) {
      this.streak = 0
      return true
    }
    if (++this.streak >= relearnAfter) this.reset()
    return false
  }
}

/** Median absolute deviation from `center`. */
export function mad(values: readonly number[], center = median(values)): number {
  return median(values.map((v) => Math.abs(v - center)))
}

/** Says whether a flag (its band) is explained away; see AnomalyDetector.judge. */
export type Explain = (low: number, high: number) => boolean

/** A value outside its band, to report. */
export interface Flag {
  readonly low: number
  readonly high: number
  readonly observed: number
  readonly detail: string | null
}

/** Events per bucket: EWMA level, band k·max(√level, 1.4826·MAD of past residuals). */
export function judgeVolume(s: Series, c: number, o: AnomalyOptions, explained?: Explain): Flag | null {
  if (s.n === 0 && c === 0) return null // nothing of this kind from this subject yet
  if (s.n === 0) {
    s.level = c
    s.n = 1
    return null
  }
  const residuals = s.history
  const sigma = Math.max(Math.sqrt(Math.max(s.level, 1)), 1.4826 * mad(residuals, 0))
  const low = s.level - o.k * sigma
  const high = s.level + o.k * sigma
  const anomalous = s.n >= o.warmup && (c < low || c > high) && Math.abs(c - s.level) >= o.minVolumeChange
  const flag =
    anomalous && !explained?.(low, high) ? { low: Math.max(0, low), high, observed: c, detail: null } : null
  if (s.settle(anomalous, o.relearnAfter)) {
    // Huber-clipped: one odd bucket (in the warm-up, say) moves the level by 3σ at most.
    const r = c - s.level
    const clipped = s.n >= 3 ? Math.max(-3 * sigma, Math.min(3 * sigma, r)) : r
    s.remember(clipped)
    s.level += 0.2 * clipped
    s.n++
  }
  return flag
}

/** num/den per bucket (den ≥ minCount): pooled EWMA rate, binomial band widened by overdispersion. */
export function judgeRatio(
  s: Series,
  num: number,
  den: number,
  o: AnomalyOptions,
  explained?: Explain,
): Flag | null {
  const v = Math.min(num / den, 1)
  if (s.n === 0) {
    s.num = num
    s.den = den
    s.n = 1
    return null
  }
  // Rates near 0 or 1 get a floor, so a single event does not read as many deviations.
  const p = Math.min(Math.max(s.num / s.den, 0.5 / s.den), 1 - 0.5 / s.den)
  const se = Math.sqrt((p * (1 - p)) / den)
  const z = (v - p) / se
  // Overdispersion is measured only where z-scores mean something (≥ 5 expected events): for
  // rarer events the discreteness alone would inflate their MAD.
  const scale = Math.max(1, s.history.length >= 5 && den * p >= 5 ? 1.4826 * mad(s.history, 0) : 1)
  // The band: counts whose binomial tail under the baseline rate is not below the k-sigma
  // normal tail (small counts of rare events are skewed: a normal band would flag noise),
  // widened by the series' own overdispersion (MAD of its past z-scores).
  const [lo, hi] = binomialBand(den, p, o.ratioTail)
  const low = Math.max(0, p - (p - lo / den) * scale)
  const high = Math.min(1, p + (hi / den - p) * scale)
  const anomalous = s.n >= o.warmup && (v < low || v > high)
  const flag =
    anomalous && !explained?.(low, high)
      ? { low: Math.max(0, low), high: Math.min(1, high), observed: v, detail: `${num}/${den}` }
      : null
  if (s.settle(anomalous, o.relearnAfter)) {
    // Huber-clipped at 3 binomial σ: the first, partial bucket of an attack (inside the band)
    // must not drag the baseline up for the buckets after it.
    const sd = Math.sqrt(den * p * (1 - p))
    const clipped = Math.max(den * p - 3 * sd, Math.min(den * p + 3 * sd, num))
    s.remember(z)
    s.num += 0.2 * (clipped * (s.den / den) - s.num)
    s.den += 0.2 * (den - s.den)
    s.n++
  }
  return flag
}

/** A bucket's median: median of past medians ± k·max(1.4826·MAD, floor, a quarter of it). */
export function judgeMedian(
  s: Series,
  samples: readonly number[],
  floor: number,
  oneSided: boolean,
  o: AnomalyOptions,
): Flag | null {
  const v = median(samples)
  let flag: Flag | null = null
  if (s.history.length >= o.warmup) {
    const m = median(s.history)
    const spread = Math.max(1.4826 * mad(s.history, m), floor, 0.25 * Math.abs(m))
    const low = oneSided ? Number.NEGATIVE_INFINITY : m - o.k * spread
    const high = m + o.k * spread
    const anomalous = v < low || v > high
    if (anomalous) flag = { low: Math.max(0, low), high, observed: v, detail: null }
    if (!s.settle(anomalous, o.relearnAfter)) return flag
  }
  s.remember(v)
  s.n++
  return flag
}
