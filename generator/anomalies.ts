import type { EventType } from '../events/catalog.js'
import { auctionOf, type Event, makeClick } from './events.js'
import { generateFunnel } from './funnel.js'
import { Random } from './random.js'

/**
 * Traffic from several sources (API keys), as the correlator sees it — each event with its source
 * and the time it reached the gateway — with labelled anomalies injected, to measure the
 * correlator's anomaly detection (correlator/anomaly.ts) by precision and recall:
 *
 *   click_flood   one source sends a burst of clicks on its own impressions, seconds after them
 *   ctr_spike     one campaign's impressions get clicked far more often, for a while
 *   stale_source  one source sends events whose event times lag hours behind their arrival
 *
 * Each label names its subject (source:… or campaign:…), its window of arrival time, the metrics
 * that should catch it, and the other subjects its extra or shifted events touch (a flood of
 * clicks raises the CTR of the campaigns clicked too): flags on those in the window are effects
 * of the anomaly, not false positives.
 */
export type AnomalyKind = 'click_flood' | 'ctr_spike' | 'stale_source'

export interface AnomalyLabel {
  kind: AnomalyKind
  subject: string
  /** Arrival-time window [from, to) of the injected events. */
  from: number
  to: number
  metrics: string[]
  related: string[]
}

export interface ObservedEvent {
  type: EventType
  event: Event
}

export interface SourcedTrafficOptions {
  seed: number
  bids: number
  spanMs: number
  start: number
  /** Source names; each auction (bid → impression → click → conversion) comes from one. */
  sources: readonly string[]
  /** Which anomalies to inject (none: a clean run). */
  anomalies?: readonly AnomalyKind[]
}

export interface SourcedTraffic {
  /** In arrival (ingest time) order. */
  events: ObservedEvent[]
  labels: AnomalyLabel[]
}

const MINUTE = 60_000

export function generateSourcedTraffic(o: SourcedTrafficOptions): SourcedTraffic {
  const funnel = generateFunnel({ seed: o.seed, bids: o.bids, spanMs: o.spanMs, start: o.start })
  const rng = new Random(o.seed ^ 0x5eed)
  // Source per auction, inherited down the funnel; arrival 0.2–3 s after the event.
  const sourceOf = new Map<string, string>()
  const events: ObservedEvent[] = []
  const arrive = (type: EventType, e: Event, source: string) => {
    e.source = source
    e.ingest_time = (e.event_time as number) + rng.int(200, 3000)
    events.push({ type, event: e })
  }
  for (const b of funnel.bid) {
    const s = rng.pick(o.sources)
    sourceOf.set(auctionOf(b), s)
    arrive('bid', b, s)
  }
  const impSource = new Map<string, string>()
  for (const i of funnel.impression) {
    const s = sourceOf.get(i.auction_id as string)!
    impSource.set(i.impression_id as string, s)
    arrive('impression', i, s)
  }
  const clickSource = new Map<string, string>()
  for (const c of funnel.click) {
    const s = impSource.get(c.impression_id as string)!
    clickSource.set(c.click_id as string, s)
    arrive('click', c, s)
  }
  for (const v of funnel.conversion) arrive('conversion', v, clickSource.get(v.click_id as string)!)

  const labels: AnomalyLabel[] = []
  const kinds = o.anomalies ?? []
  // Windows well after the detector's warm-up, apart from each other.
  const at = (share: number) => o.start + Math.floor(o.spanMs * share)
  const impressions = funnel.impression
  if (kinds.includes('click_flood')) {
    const source = o.sources[1 % o.sources.length]!
    const from = at(0.45)
    const to = from + 10 * MINUTE
    const related = new Set<string>()
    const mine = impressions.filter(
      (i) => i.source === source && (i.ingest_time as number) >= from && (i.ingest_time as number) < to,
    )
    // Thirty clicks a minute on its own fresh impressions, 1–3 s after each.
    for (let n = 0; n < 30 * 10 && mine.length > 0; n++) {
      const imp = rng.pick(mine)
      const click = makeClick(rng, imp, (imp.event_time as number) + rng.int(1000, 3000))
      arrive('click', click, source)
      related.add(`campaign:${imp.campaign_id}`)
    }
    labels.push({
      kind: 'click_flood',
      subject: `source:${source}`,
      from,
      to,
      metrics: ['volume.click', 'click_delay', 'cluster'],
      related: [...related],
    })
  }
  if (kinds.includes('ctr_spike')) {
    const campaign = impressions[0]!.campaign_id as string
    const from = at(0.65)
    const to = from + 15 * MINUTE
    const related = new Set<string>()
    for (const imp of impressions) {
      const t = imp.ingest_time as number
      if (imp.campaign_id !== campaign || t < from || t >= to || !rng.chance(0.3)) continue
      const click = makeClick(
        rng,
        imp,
        (imp.event_time as number) + 1000 + Math.floor(rng.exponential(30_000)),
      )
      arrive('click', click, imp.source as string)
      related.add(`source:${imp.source}`)
    }
    labels.push({
      kind: 'ctr_spike',
      subject: `campaign:${campaign}`,
      from,
      to,
      metrics: ['ctr', 'volume.click'],
      related: [...related],
    })
  }
  if (kinds.includes('stale_source')) {
    const source = o.sources[2 % o.sources.length]!
    const from = at(0.8)
    const to = from + 15 * MINUTE
    const related = new Set<string>()
    for (const { event: e } of events) {
      const t = e.ingest_time as number
      if (e.source !== source || t < from || t >= to) continue
      e.event_time = (e.event_time as number) - 3 * 60 * MINUTE
      if (e.campaign_id) related.add(`campaign:${e.campaign_id}`)
    }
    labels.push({
      kind: 'stale_source',
      subject: `source:${source}`,
      from,
      to,
      metrics: ['staleness'],
      related: [...related],
    })
  }
  // The run ends with the bids' span: conversions trailing after it would read as traffic stopping.
  const end = o.start + o.spanMs
  const kept = events.filter((e) => (e.event.ingest_time as number) < end)
  kept.sort((a, b) => (a.event.ingest_time as number) - (b.event.ingest_time as number))
  return { events: kept, labels }
}

export interface Scored {
  /** Labels with at least one flag on their subject, by one of their metrics, in their window. */
  detected: number
  labels: number
  /** Flags explained by a label (its subject or a related one, in its window). */
  explained: number
  flags: number
  precision: number
  recall: number
  /** Precision counting only flags on a label's own subject (side effects count as false). */
  strictPrecision: number
}

/**
 * Precision and recall of detector flags against the labels. A flag's bucket may trail the window
 * by the bucket it falls in plus one (a bucket closes after the events that end it).
 */
export function scoreFlags(
  flags: readonly { metric: string; subject: string; bucket: number; window_ms: number }[],
  labels: readonly AnomalyLabel[],
  bucketMs: number,
): Scored {
  const inWindow = (f: { bucket: number; metric: string }, l: AnomalyLabel) =>
    f.metric === 'cluster'
      ? f.bucket >= l.from && f.bucket < l.to + 60 * MINUTE
      : f.bucket + bucketMs > l.from && f.bucket < l.to + bucketMs
  const detected = labels.filter((l) =>
    flags.some((f) => f.subject === l.subject && l.metrics.includes(f.metric) && inWindow(f, l)),
  ).length
  const explained = flags.filter((f) =>
    labels.some((l) => (f.subject === l.subject || l.related.includes(f.subject)) && inWindow(f, l)),
  ).length
  const own = flags.filter((f) => labels.some((l) => f.subject === l.subject && inWindow(f, l))).length
  return {
    strictPrecision: flags.length === 0 ? 1 : own / flags.length,
    detected,
    labels: labels.length,
    explained,
    flags: flags.length,
    precision: flags.length === 0 ? 1 : explained / flags.length,
    recall: labels.length === 0 ? 1 : detected / labels.length,
  }
}
