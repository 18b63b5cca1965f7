/// <reference path="./density-clustering.d.ts" />
import densityClustering from 'density-clustering'
import type { AnomalyRow } from './rows.js'

/**
 * Anomaly detection on the correlator's input, per campaign and per source, in buckets of
 * ingest time (when events reached the gateway, so a source sending stale events is seen when it
 * sends them). When a bucket closes, each series is compared with a robust streaming baseline of
 * its own past and flagged outside the expected band:
 *
 *   volume.<type>  events per bucket, by campaign and by source: EWMA level (residuals clipped
 *                  at 3σ), band k·σ with σ = max(√level (Poisson), 1.4826·MAD of past residuals)
 *   ctr, cvr, win_rate  per campaign: clicks/impressions, conversions/clicks, impressions/bids;
 *                  pooled EWMA rate p, band p ± k·s·√(p(1−p)/n), s = MAD of past z-scores (≥ 1)
 *   click_delay    median click − impression delay, by campaign and by source (two-sided)
 *   staleness      median ingest − event time, by source (one-sided: older)
 *                  both: median of the last accepted bucket medians ± k·max(1.4826·MAD, floor)
 *
 * A flagged bucket does not feed its baseline (so an attack does not become the norm); a series
 * flagged `relearnAfter` buckets in a row starts over (a lasting change in level). And every
 * `clusterEvery` buckets, sources are clustered (DBSCAN) on robustly standardized feature vectors
 * (CTR, click delay, staleness, share of clicks without a known impression, over the last hour):
 * sources in no cluster are flagged `cluster` — the shape of click farms.
 *
 * State (`snapshot()` / `restore()`) is checkpointed with the correlator's join state, so the
 * baselines survive a restart; the correlator feeds it only records past the positions the
 * snapshot reflects. Rows are keyed by (metric, subject, bucket), so re-detection after a replay
 * rewrites, not duplicates.
 */

export const ANOMALY_METRICS = [
  'volume.bid',
  'volume.impression',
  'volume.click',
  'volume.conversion',
  'ctr',
  'cvr',
  'win_rate',
  'click_delay',
  'staleness',
  'cluster',
] as const

export interface AnomalyOptions {
  bucketMs: number
  /** Buckets of history before a series may be flagged. */
  warmup: number
  /** Band half-width in robust standard deviations. */
  k: number
  /** A bucket closes when events this much newer (ingest time) have arrived. */
  closeAfterMs: number
  relearnAfter: number
  clusterEvery: number
  /** Least denominator (events) for a ratio, and least samples for a median, to judge a bucket. */
  minCount: number
  /** Least absolute change in a volume to flag (a few events are never an incident). */
  minVolumeChange: number
  /** Ratios: binomial tail probability beyond which a count is outside the band. */
  ratioTail: number
}

export const DEFAULT_ANOMALY_OPTIONS: AnomalyOptions = {
  bucketMs: 60_000,
  warmup: 10,
  k: 6,
  closeAfterMs: 120_000,
  relearnAfter: 30,
  clusterEvery: 10,
  minCount: 30,
  minVolumeChange: 30,
  // ≈ the normal tail beyond 5σ: a few thousand ratio tests per day of buckets give ~0.001 false flags.
  ratioTail: 3e-7,
}

/** The fields of a decoded event the detector reads (correlator/decode.ts decodes them). */
export interface ObservedEvent {
  event_time: number
  ingest_time?: number
  source?: string
  campaign_id?: string | null
  impression_id?: string
  event_id?: string
}

type EventKind = 'bid' | 'impression' | 'click' | 'conversion'
const KINDS: readonly EventKind[] = ['bid', 'impression', 'click', 'conversion']
const SAMPLE_CAP = 512
const QUIET_AFTER = 50_000

export class Acc {
  readonly counts = [0, 0, 0, 0]
  clicksNoImpression = 0
  delays: number[] = []
  ages: number[] = []
  /** A campaign's counts per source, to tell whether a flagged source explains its flag. */
  bySource: Map<string, number[]> | null = null
}

/** Says whether a flag (its band) is explained away; see AnomalyDetector.judge. */
type Explain = (low: number, high: number) => boolean

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
}

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

function mad(values: readonly number[], center = median(values)): number {
  return median(values.map((v) => Math.abs(v - center)))
}

function sample(list: number[], v: number, seen: number): void {
  // Reservoir-free cap: the first SAMPLE_CAP samples of a bucket stand for it (medians only).
  if (seen <= SAMPLE_CAP) list.push(v)
}

/** Everything the detector has learnt, as plain data (a structured clone of it restores it). */
export interface AnomalyState {
  buckets: Map<number, Map<string, Acc>>
  series: Map<string, Series>
  subjects: Set<string>
  impressions: Map<string, number>
  impressionOrder: [string, number][]
  maxIngest: number
  maxByKind: number[]
  lastSeen: number[]
  observed: number
  closedThrough: number
  closedCount: number
  sourceHistory: Map<string, { bucket: number; acc: Acc }[]>
}

export class AnomalyDetector {
  readonly o: AnomalyOptions
  private buckets = new Map<number, Map<string, Acc>>()
  private series = new Map<string, Series>()
  /** Subjects seen, so a silent bucket counts as 0 for their volumes. */
  private subjects = new Set<string>()
  /** Recent impressions: id → (ingest time, source), for click delays and clicks without one. */
  private impressions = new Map<string, number>()
  private impressionOrder: [string, number][] = []
  private maxIngest = Number.NEGATIVE_INFINITY
  /**
   * Newest arrival per event type: topics are read at their own pace, so a bucket closes only when
   * every type has moved past it; a type absent from the last QUIET_AFTER events (conversions are
   * rare; a topic may be empty) no longer holds it back.
   */
  private maxByKind = [
    Number.NEGATIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  ]
  private lastSeen = [0, 0, 0, 0]
  private observed = 0
  private closedThrough = Number.NEGATIVE_INFINITY
  private closedCount = 0
  /** Per source, per closed bucket: the features' raw sums, for clustering over the last hour. */
  private sourceHistory = new Map<string, { bucket: number; acc: Acc }[]>()

  constructor(options: Partial<AnomalyOptions> = {}) {
    this.o = { ...DEFAULT_ANOMALY_OPTIONS, ...options }
  }

  /** Events observed since the state began (restored ones included): the newer of two snapshots has more. */
  get observedCount(): number {
    return this.observed
  }

  /** The live state, for serializing at once (v8.serialize copies it). */
  snapshot(): AnomalyState {
    return {
      buckets: this.buckets,
      series: this.series,
      subjects: this.subjects,
      impressions: this.impressions,
      impressionOrder: this.impressionOrder,
      maxIngest: this.maxIngest,
      maxByKind: this.maxByKind,
      lastSeen: this.lastSeen,
      observed: this.observed,
      closedThrough: this.closedThrough,
      closedCount: this.closedCount,
      sourceHistory: this.sourceHistory,
    }
  }

  /** Takes over a deserialized snapshot (its Series and Acc are plain objects again). */
  restore(s: AnomalyState): void {
    const acc = (a: Acc) => Object.assign(new Acc(), a)
    this.buckets = new Map(
      [...s.buckets].map(([b, accs]) => [b, new Map([...accs].map(([k, a]) => [k, acc(a)]))]),
    )
    this.series = new Map([...s.series].map(([k, v]) => [k, Object.assign(new Series(), v)]))
    this.subjects = s.subjects
    this.impressions = s.impressions
    this.impressionOrder = s.impressionOrder
    this.maxIngest = s.maxIngest
    this.maxByKind = s.maxByKind
    this.lastSeen = s.lastSeen
    this.observed = s.observed
    this.closedThrough = s.closedThrough
    this.closedCount = s.closedCount
    this.sourceHistory = new Map(
      [...s.sourceHistory].map(([k, h]) => [k, h.map((e) => ({ bucket: e.bucket, acc: acc(e.acc) }))]),
    )
  }

  observe(kind: EventKind, e: ObservedEvent): void {
    const arrived = e.ingest_time && e.ingest_time > 0 ? e.ingest_time : e.event_time
    const bucket = arrived - (((arrived % this.o.bucketMs) + this.o.bucketMs) % this.o.bucketMs)
    if (bucket <= this.closedThrough) return // too late for its bucket: already judged
    if (arrived > this.maxIngest) this.maxIngest = arrived
    const k = KINDS.indexOf(kind)
    if (arrived > this.maxByKind[k]!) this.maxByKind[k] = arrived
    this.lastSeen[k] = ++this.observed
    let accs = this.buckets.get(bucket)
    if (accs === undefined) {
      accs = new Map()
      this.buckets.set(bucket, accs)
    }
    const subjects: string[] = []
    if (e.source) subjects.push(`source:${e.source}`)
    if (e.campaign_id) subjects.push(`campaign:${e.campaign_id}`)
    let delay = Number.NaN
    if (kind === 'impression' && e.impression_id) {
      this.impressions.set(e.impression_id, e.event_time)
      this.impressionOrder.push([e.impression_id, arrived])
    } else if (kind === 'click' && e.impression_id) {
      const t = this.impressions.get(e.impression_id)
      if (t !== undefined) delay = e.event_time - t
    }
    for (const s of subjects) {
      this.subjects.add(s)
      let acc = accs.get(s)
      if (acc === undefined) {
        acc = new Acc()
        accs.set(s, acc)
      }
      acc.counts[k]!++
      if (e.source && s.startsWith('campaign:')) {
        if (acc.bySource === null) acc.bySource = new Map()
        let c = acc.bySource.get(e.source)
        if (c === undefined) {
          c = [0, 0, 0, 0]
          acc.bySource.set(e.source, c)
        }
        c[k]!++
      }
      if (kind === 'click') {
        if (Number.isNaN(delay)) acc.clicksNoImpression++
        else sample(acc.delays, delay, acc.counts[k]!)
      }
      if (s.startsWith('source:'))
        sample(
          acc.ages,
          arrived - e.event_time,
          acc.counts[0]! + acc.counts[1]! + acc.counts[2]! + acc.counts[3]!,
        )
    }
  }

  /** Closes every bucket the newest arrivals have left behind; returns what was flagged in them. */
  advance(): AnomalyRow[] {
    const out: AnomalyRow[] = []
    let newest = this.maxIngest
    for (let k = 0; k < KINDS.length; k++) {
      const seen = this.lastSeen[k]! > 0 && this.observed - this.lastSeen[k]! < QUIET_AFTER
      if (seen && this.maxByKind[k]! < newest) newest = this.maxByKind[k]!
    }
    const watermark = newest - this.o.closeAfterMs
    for (const bucket of [...this.buckets.keys()].sort((a, b) => a - b)) {
      if (bucket + this.o.bucketMs > watermark) break
      const accs = this.buckets.get(bucket)!
      this.buckets.delete(bucket)
      this.closedThrough = bucket
      this.judge(bucket, accs, out)
      this.closedCount++
      if (this.closedCount % this.o.clusterEvery === 0) this.cluster(bucket, out)
    }
    // Impressions older than an hour of arrivals no longer explain clicks.
    while (this.impressionOrder.length > 0 && this.impressionOrder[0]![1] < watermark - 3_600_000)
      this.impressions.delete(this.impressionOrder.shift()![0])
    return out
  }

  /**
   * Sources first, then campaigns: a campaign flag that the bucket's flagged sources explain —
   * its value without their events is back inside its band (a click flood from one source
   * raises the CTR of every campaign it clicks) — is not reported; the source's flag is the
   * incident. The campaign's baseline still skips the bucket.
   */
  private judge(bucket: number, accs: Map<string, Acc>, out: AnomalyRow[]): void {
    const empty = new Acc()
    const flaggedSources = new Set<string>()
    const subjects = [...this.subjects]
    for (const pass of ['source:', 'campaign:']) {
      for (const subject of subjects) {
        if (subject.startsWith(pass))
          this.judgeSubject(subject, bucket, accs.get(subject) ?? empty, flaggedSources, out)
      }
    }
  }

  private judgeSubject(
    subject: string,
    bucket: number,
    acc: Acc,
    flaggedSources: Set<string>,
    out: AnomalyRow[],
  ): void {
    const isSource = subject.startsWith('source:')
    const before = out.length
    // Counts of this campaign's events from the bucket's flagged sources, by kind.
    const suspect = [0, 0, 0, 0]
    if (!isSource && acc.bySource !== null)
      for (const src of flaggedSources) {
        const c = acc.bySource.get(src)
        if (c !== undefined) for (let k = 0; k < 4; k++) suspect[k]! += c[k]!
      }
    const without = (k: number) => acc.counts[k]! - suspect[k]!
    const anySuspect = suspect.some((x) => x > 0)
    const volumeExplained = (k: number): Explain | undefined =>
      anySuspect ? (low, high) => without(k) >= low && without(k) <= high : undefined
    const ratioExplained = (num: number, den: number): Explain | undefined =>
      anySuspect
        ? (low, high) =>
            without(den) > 0 && without(num) / without(den) >= low && without(num) / without(den) <= high
        : undefined
    for (let k = 0; k < KINDS.length; k++)
      this.volume(`volume.${KINDS[k]}`, subject, bucket, acc.counts[k]!, out, volumeExplained(k))
    if (!isSource) {
      this.ratio('ctr', subject, bucket, acc.counts[2]!, acc.counts[1]!, out, ratioExplained(2, 1))
      this.ratio('cvr', subject, bucket, acc.counts[3]!, acc.counts[2]!, out, ratioExplained(3, 2))
      this.ratio('win_rate', subject, bucket, acc.counts[1]!, acc.counts[0]!, out, ratioExplained(1, 0))
    }
    this.medianSeries('click_delay', subject, bucket, acc.delays, 10_000, false, out)
    if (isSource) {
      this.medianSeries('staleness', subject, bucket, acc.ages, 60_000, true, out)
      let h = this.sourceHistory.get(subject)
      if (h === undefined) {
        h = []
        this.sourceHistory.set(subject, h)
      }
      if (acc.counts.some((c) => c > 0) || acc.delays.length > 0) h.push({ bucket, acc })
      while (h.length > 0 && h[0]!.bucket <= bucket - 3_600_000) h.shift()
    }
    if (isSource && out.length > before) flaggedSources.add(subject.slice('source:'.length))
  }

  private get(metric: string, subject: string): Series {
    const key = `${metric}\u0000${subject}`
    let s = this.series.get(key)
    if (s === undefined) {
      s = new Series()
      this.series.set(key, s)
    }
    return s
  }

  /** Flag bookkeeping shared by the series kinds: returns whether the value may feed the baseline. */
  private verdict(s: Series, anomalous: boolean): boolean {
    if (!anomalous) {
      s.streak = 0
      return true
    }
    if (++s.streak >= this.o.relearnAfter) s.reset()
    return false
  }

  private volume(
    metric: string,
    subject: string,
    bucket: number,
    c: number,
    out: AnomalyRow[],
    explained?: Explain,
  ): void {
    const s = this.get(metric, subject)
    if (s.n === 0 && c === 0) return // nothing of this kind from this subject yet
    if (s.n === 0) {
      s.level = c
      s.n = 1
      return
    }
    const residuals = s.history
    const sigma = Math.max(Math.sqrt(Math.max(s.level, 1)), 1.4826 * mad(residuals, 0))
    const low = s.level - this.o.k * sigma
    const high = s.level + this.o.k * sigma
    const anomalous =
      s.n >= this.o.warmup && (c < low || c > high) && Math.abs(c - s.level) >= this.o.minVolumeChange
    if (anomalous && !explained?.(low, high))
      out.push(this.row(metric, subject, bucket, Math.max(0, low), high, c, null))
    if (this.verdict(s, anomalous)) {
      // Huber-clipped: one odd bucket (in the warm-up, say) moves the level by 3σ at most.
      const r = c - s.level
      const clipped = s.n >= 3 ? Math.max(-3 * sigma, Math.min(3 * sigma, r)) : r
      s.remember(clipped)
      s.level += 0.2 * clipped
      s.n++
    }
  }

  private ratio(
    metric: string,
    subject: string,
    bucket: number,
    num: number,
    den: number,
    out: AnomalyRow[],
    explained?: Explain,
  ): void {
    if (den < this.o.minCount) return
    const s = this.get(metric, subject)
    const v = Math.min(num / den, 1)
    if (s.n === 0) {
      s.num = num
      s.den = den
      s.n = 1
      return
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
    const [lo, hi] = binomialBand(den, p, this.o.ratioTail)
    const low = Math.max(0, p - (p - lo / den) * scale)
    const high = Math.min(1, p + (hi / den - p) * scale)
    const anomalous = s.n >= this.o.warmup && (v < low || v > high)
    if (anomalous && !explained?.(low, high))
      out.push(this.row(metric, subject, bucket, Math.max(0, low), Math.min(1, high), v, `${num}/${den}`))
    if (this.verdict(s, anomalous)) {
      // Huber-clipped at 3 binomial σ: the first, partial bucket of an attack (inside the band)
      // must not drag the baseline up for the buckets after it.
      const sd = Math.sqrt(den * p * (1 - p))
      const clipped = Math.max(den * p - 3 * sd, Math.min(den * p + 3 * sd, num))
      s.remember(z)
      s.num += 0.2 * (clipped * (s.den / den) - s.num)
      s.den += 0.2 * (den - s.den)
      s.n++
    }
  }

  private medianSeries(
    metric: string,
    subject: string,
    bucket: number,
    samples: readonly number[],
    floor: number,
    oneSided: boolean,
    out: AnomalyRow[],
  ): void {
    if (samples.length < Math.min(this.o.minCount, 10)) return
    const s = this.get(metric, subject)
    const v = median(samples)
    if (s.history.length >= this.o.warmup) {
      const m = median(s.history)
      const spread = Math.max(1.4826 * mad(s.history, m), floor, 0.25 * Math.abs(m))
      const low = oneSided ? Number.NEGATIVE_INFINITY : m - this.o.k * spread
      const high = m + this.o.k * spread
      const anomalous = v < low || v > high
      if (anomalous) out.push(this.row(metric, subject, bucket, Math.max(0, low), high, v, null))
      if (!this.verdict(s, anomalous)) return
    }
    s.remember(v)
    s.n++
  }

  /** DBSCAN over the sources' last-hour features; sources in no cluster are outliers. */
  private cluster(bucket: number, out: AnomalyRow[]): void {
    const names: string[] = []
    const raw: number[][] = []
    for (const [subject, h] of this.sourceHistory) {
      let imps = 0
      let clicks = 0
      let orphans = 0
      const delays: number[] = []
      const ages: number[] = []
      for (const { acc } of h) {
        imps += acc.counts[1]!
        clicks += acc.counts[2]!
        orphans += acc.clicksNoImpression
        for (const d of acc.delays) delays.push(d)
        for (const a of acc.ages) ages.push(a)
      }
      if (imps < 100 || clicks < 10 || delays.length < 10) continue
      names.push(subject)
      raw.push([
        Math.log((clicks + 1) / (imps + 1)),
        Math.log(Math.max(median(delays), 1)),
        Math.log(Math.max(median(ages), 1)),
        orphans / clicks,
      ])
    }
    if (names.length < 4) return
    // Robust standardization per feature: (x − median) / max(1.4826·MAD, floor).
    const FLOORS = [0.5, 0.5, 0.5, 0.1]
    const centers = FLOORS.map((_, f) => median(raw.map((r) => r[f]!)))
    const scales = FLOORS.map((fl, f) =>
      Math.max(
        1.4826 *
          mad(
            raw.map((r) => r[f]!),
            centers[f]!,
          ),
        fl,
      ),
    )
    const z = raw.map((r) => r.map((x, f) => (x - centers[f]!) / scales[f]!))
    const clusters = new densityClustering.DBSCAN().run(z, 3, Math.max(2, Math.ceil(names.length / 3)))
    const inCluster = new Set(clusters.flat())
    for (let i = 0; i < names.length; i++) {
      if (inCluster.has(i)) continue
      // Report the most deviant feature; a lone point must also be far from everyone.
      let f = 0
      for (let j = 1; j < FLOORS.length; j++) if (Math.abs(z[i]![j]!) > Math.abs(z[i]![f]!)) f = j
      if (Math.abs(z[i]![f]!) < this.o.k) continue
      const FEATURES = ['log_ctr', 'log_click_delay_ms', 'log_staleness_ms', 'orphan_click_share']
      out.push(
        this.row(
          'cluster',
          names[i]!,
          bucket,
          centers[f]! - this.o.k * scales[f]!,
          centers[f]! + this.o.k * scales[f]!,
          raw[i]![f]!,
          JSON.stringify({
            feature: FEATURES[f],
            source: Object.fromEntries(FEATURES.map((n, j) => [n, round(raw[i]![j]!)])),
            median: Object.fromEntries(FEATURES.map((n, j) => [n, round(centers[j]!)])),
            sources: names.length,
          }),
        ),
      )
    }
  }

  private row(
    metric: string,
    subject: string,
    bucket: number,
    low: number,
    high: number,
    observed: number,
    detail: string | null,
  ): AnomalyRow {
    return {
      metric,
      subject,
      bucket,
      window_ms: metric === 'cluster' ? 3_600_000 : this.o.bucketMs,
      expected_low: low,
      expected_high: high,
      observed,
      detail,
    }
  }
}

// Lanczos approximation of ln Γ(x), x > 0 (g = 7, n = 9).
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
]
function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x)
  const y = x - 1
  let a = LANCZOS[0]!
  const t = y + 7.5
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (y + i)
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a)
}

function binomialPmf(i: number, n: number, p: number): number {
  return Math.exp(
    lnGamma(n + 1) - lnGamma(i + 1) - lnGamma(n - i + 1) + i * Math.log(p) + (n - i) * Math.log1p(-p),
  )
}

/**
 * [lo, hi]: the counts out of n that are not in a tail of probability < alpha under Binomial(n, p):
 * P(X < lo) < alpha and P(X > hi) < alpha, walking out from the mean.
 */
export function binomialBand(n: number, p: number, alpha: number): [number, number] {
  const mean = Math.floor(n * p)
  let hi = n
  let tail = 0
  for (let c = n; c > mean; c--) {
    tail += binomialPmf(c, n, p)
    if (tail >= alpha) {
      hi = c
      break
    }
    hi = c - 1
  }
  let lo = 0
  tail = 0
  for (let c = 0; c < mean; c++) {
    tail += binomialPmf(c, n, p)
    if (tail >= alpha) {
      lo = c
      break
    }
    lo = c + 1
  }
  return [lo, hi]
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
