import { AnomalyDetector, type ObservedEvent } from '../correlator/anomaly.js'
import type { AnomalyRow } from '../correlator/rows.js'
import { generateSourcedTraffic, scoreFlags } from '../generator/anomalies.js'
import { QUICK_OPTIONS } from './lib/harness.js'
import type { RunOptions } from './lib/module.js'
import { qualityCostCases } from './lib/quality-cost.js'
import type { BenchResult } from './lib/results.js'
import { median } from './lib/stats.js'

/**
 * Anomaly detection (correlator/anomaly.ts) against labelled anomalies the generator injects
 * (generator/anomalies.ts): a click flood from one source, a CTR spike on one campaign, a source
 * sending stale events — 4 hours of traffic from 6 sources (200k bid requests), 5-minute buckets.
 * Per seed: precision (flags explained by a label: its subject, or one its events touched, in
 * its window), strict precision (the label's own subject only), recall (labels caught by one of
 * their metrics); and flags on clean runs of other seeds, which should be none. Then the
 * data-quality rules' cost on the decoder workers' path (the decoder benchmark's quality cases).
 */
export const description =
  'anomaly detection: precision and recall on injected anomalies, flags on clean runs'

const BUCKET = 5 * 60_000
const SOURCES = ['ssp-a', 'ssp-b', 'ssp-c', 'ssp-d', 'ssp-e', 'ssp-f']

function detect(seed: number, injected: boolean, bids: number) {
  const { events, labels } = generateSourcedTraffic({
    seed,
    bids,
    spanMs: 4 * 3_600_000,
    start: Date.UTC(2026, 10, 1),
    sources: SOURCES,
    anomalies: injected ? ['click_flood', 'ctr_spike', 'stale_source'] : [],
  })
  const d = new AnomalyDetector({ bucketMs: BUCKET, closeAfterMs: 2 * BUCKET })
  const flags: AnomalyRow[] = []
  const t0 = performance.now()
  for (let i = 0; i < events.length; i++) {
    d.observe(events[i]!.type, events[i]!.event as unknown as ObservedEvent)
    if (i % 1000 === 999) flags.push(...d.advance())
  }
  flags.push(...d.advance())
  const seconds = (performance.now() - t0) / 1000
  return { score: scoreFlags(flags, labels, BUCKET), eventsPerSec: events.length / seconds }
}

export async function run(options: RunOptions = { quick: false }): Promise<BenchResult[]> {
  const seeds = options.quick ? [1] : [1, 2, 3, 4, 5]
  const bids = options.quick ? 40_000 : 200_000
  const results: BenchResult[] = []
  const precision: number[] = []
  const strict: number[] = []
  const recall: number[] = []
  const speed: number[] = []
  for (const seed of seeds) {
    const { score, eventsPerSec } = detect(seed, true, bids)
    speed.push(eventsPerSec)
    precision.push(score.precision)
    strict.push(score.strictPrecision)
    recall.push(score.recall)
    const name = `anomalies injected (click flood, CTR spike, stale source), seed ${seed}`
    results.push(
      { case: name, metric: 'precision', value: score.precision, unit: 'share' },
      { case: name, metric: 'strict precision', value: score.strictPrecision, unit: 'share' },
      { case: name, metric: 'recall', value: score.recall, unit: 'share' },
      { case: name, metric: 'flags', value: score.flags, unit: 'flags' },
    )
  }
  let cleanFlags = 0
  for (const seed of seeds.map((s) => s + 100)) {
    const { score, eventsPerSec } = detect(seed, false, bids)
    speed.push(eventsPerSec)
    cleanFlags += score.flags
    results.push({ case: `clean traffic, seed ${seed}`, metric: 'flags', value: score.flags, unit: 'flags' })
  }
  results.push(
    {
      case: `anomalies injected, median over ${seeds.length} seeds`,
      metric: 'precision',
      value: median(precision),
      unit: 'share',
    },
    {
      case: `anomalies injected, median over ${seeds.length} seeds`,
      metric: 'strict precision',
      value: median(strict),
      unit: 'share',
    },
    {
      case: `anomalies injected, median over ${seeds.length} seeds`,
      metric: 'recall',
      value: median(recall),
      unit: 'share',
    },
    { case: `clean traffic, ${seeds.length} seeds`, metric: 'flags', value: cleanFlags, unit: 'flags' },
    {
      case: 'detector throughput (observe + advance, one thread)',
      metric: 'events/s',
      value: median(speed),
      unit: 'events/s/core',
    },
  )
  // The rules' cost too (also part of the decoder benchmark, decoders.json).
  results.push(...(await qualityCostCases(options.quick ? QUICK_OPTIONS : {})))
  process.stdout.write(
    `\nanomaly detection: precision ${median(precision).toFixed(2)}, recall ${median(recall).toFixed(2)} (target ≥ 0.9 both), ${cleanFlags} flags on clean runs (target 0)\n`,
  )
  return results
}
