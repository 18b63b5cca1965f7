import { Acc, bucketOf, type EventKind, KINDS, sample } from './anomaly-buckets.js'
import { type Explain, type Flag, judgeMedian, judgeRatio, judgeVolume, Series } from './anomaly-detectors.js'
import { type AnomalyOptions, DEFAULT_ANOMALY_OPTIONS } from './anomaly-options.js'
import type { AnomalyRow } from './rows.js'
import { outlierSources } from './source-clusters.js'

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
 * The parts: anomaly-buckets.ts (what a bucket accumulates), anomaly-detectors.ts (the three
 * detectors), source-clusters.ts (DBSCAN), binomial.ts (the ratio band), anomaly-options.ts.
 *
 * State (`snapshot()` / `restore()`) is checkpointed with the correlator's join state, so the
 * baselines survive a restart; the correlator feeds it only records past the positions the
 * snapshot reflects. Rows are keyed by (metric, subject, bucket), so re-detection after a replay
 * rewrites, not duplicates.
 */

/** The fields of a decoded event the detector reads (correlator/decode.ts decodes them). */
export interface ObservedEvent {
  event_time: number
  ingest_time?: number
  source?: string
  campaign_id?: string | null
  impression_id?: string
  event_id?: string
}

const QUIET_AFTER = 50_000

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
    const bucket = bucketOf(arrived, this.o.bucketMs)
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

  private volume(
    metric: string,
    subject: string,
    bucket: number,
    c: number,
    out: AnomalyRow[],
    explained?: Explain,
  ): void {
    this.report(metric, subject, bucket, judgeVolume(this.get(metric, subject), c, this.o, explained), out)
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
    if (den < this.o.minCount) return // too few to judge; no series until there are enough
    const flag = judgeRatio(this.get(metric, subject), num, den, this.o, explained)
    this.report(metric, subject, bucket, flag, out)
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
    const flag = judgeMedian(this.get(metric, subject), samples, floor, oneSided, this.o)
    this.report(metric, subject, bucket, flag, out)
  }

  private cluster(bucket: number, out: AnomalyRow[]): void {
    for (const { subject, flag } of outlierSources(this.sourceHistory, this.o.k))
      this.report('cluster', subject, bucket, flag, out)
  }

  private report(
    metric: string,
    subject: string,
    bucket: number,
    flag: Flag | null,
    out: AnomalyRow[],
  ): void {
    if (flag === null) return
    out.push({
      metric,
      subject,
      bucket,
      window_ms: metric === 'cluster' ? 3_600_000 : this.o.bucketMs,
      expected_low: flag.low,
      expected_high: flag.high,
      observed: flag.observed,
      detail: flag.detail,
    })
  }
}
