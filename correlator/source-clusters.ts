/// <reference path="./density-clustering.d.ts" />
import densityClustering from 'density-clustering'
import { median } from '../stats/median.js'
import type { Acc } from './anomaly-buckets.js'
import { type Flag, mad } from './anomaly-detectors.js'

/**
 * Sources that look like no other (click farms): DBSCAN over robustly standardized feature
 * vectors of each source's last hour (CTR, click delay, staleness, share of clicks without a
 * known impression); a source in no cluster and at least k robust deviations off in one feature
 * is an outlier, reported on its most deviant feature.
 */
export function outlierSources(
  history: ReadonlyMap<string, readonly { bucket: number; acc: Acc }[]>,
  k: number,
): { subject: string; flag: Flag }[] {
  const names: string[] = []
  const raw: number[][] = []
  for (const [subject, h] of history) {
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
  if (names.length < 4) return []
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
  const out: { subject: string; flag: Flag }[] = []
  for (let i = 0; i < names.length; i++) {
    if (inCluster.has(i)) continue
    // Report the most deviant feature; a lone point must also be far from everyone.
    let f = 0
    for (let j = 1; j < FLOORS.length; j++) if (Math.abs(z[i]![j]!) > Math.abs(z[i]![f]!)) f = j
    if (Math.abs(z[i]![f]!) < k) continue
    const FEATURES = ['log_ctr', 'log_click_delay_ms', 'log_staleness_ms', 'orphan_click_share']
    out.push({
      subject: names[i]!,
      flag: {
        low: centers[f]! - k * scales[f]!,
        high: centers[f]! + k * scales[f]!,
        observed: raw[i]![f]!,
        detail: JSON.stringify({
          feature: FEATURES[f],
          source: Object.fromEntries(FEATURES.map((n, j) => [n, round(raw[i]![j]!)])),
          median: Object.fromEntries(FEATURES.map((n, j) => [n, round(centers[j]!)])),
          sources: names.length,
        }),
      },
    })
  }
  return out
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
