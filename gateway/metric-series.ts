import type { Counter, Histogram } from 'prom-client'

/**
 * One series of a prom-client counter or histogram, its labels fixed when it is made, for the
 * per-request path. prom-client turns the labels object into a string key on every inc/observe
 * and validates it (a label child does too): ~1 µs a call on this box, about 15 calls a request.
 * A series finds its entry's key once and then adds to the entry in place, the arithmetic
 * prom-client's inc/observe do. Whenever the entry is not there (before the first call, after a
 * reset) or the value is one prom-client refuses (negative, not finite), the call goes through
 * prom-client itself: series appear, and errors are thrown, exactly as with direct calls.
 * test/gateway/metric-series.test.ts checks the output against direct calls.
 */
export interface CounterSeries {
  inc(value?: number): void
}

export interface HistogramSeries {
  observe(value: number): void
}

type Labels = Readonly<Record<string, string | number>>

/** What prom-client keeps of a metric's series (its `hashMap`, by label key). */
interface Entries<E> {
  readonly hashMap: Record<string, E | undefined>
  readonly labelNames: readonly string[]
}

interface CounterEntry {
  value: number
  readonly labels: Labels
}

interface HistogramEntry {
  sum: number
  count: number
  readonly bucketValues: Record<string, number>
  readonly labels: Labels
}

/** The no-op series of disabled metrics (gateway/metrics.ts's `enabled: false`). */
export const NOOP_SERIES: CounterSeries & HistogramSeries = { inc() {}, observe() {} }

export function counterSeries(counter: Counter<string>, labels: Labels = {}): CounterSeries {
  const entries = counter as unknown as Entries<CounterEntry>
  let key: string | undefined
  return {
    inc(value = 1) {
      const entry = key === undefined ? undefined : entries.hashMap[key]
      if (entry === undefined || !(value >= 0 && value < Number.POSITIVE_INFINITY)) {
        counter.inc(labels, value)
        key ??= keyOf(entries, labels)
        return
      }
      entry.value += value
    },
  }
}

export function histogramSeries(histogram: Histogram<string>, labels: Labels = {}): HistogramSeries {
  const entries = histogram as unknown as Entries<HistogramEntry> & {
    readonly upperBounds: readonly number[]
  }
  const bounds = entries.upperBounds
  // The buckets' property names, made once: a fractional bound is a number turned to text per use.
  const buckets = bounds.map(String)
  let key: string | undefined
  return {
    observe(value) {
      const entry = key === undefined ? undefined : entries.hashMap[key]
      if (entry === undefined || !Number.isFinite(value)) {
        histogram.observe(labels, value)
        key ??= keyOf(entries, labels)
        return
      }
      let i = 0
      while (i < bounds.length && value > bounds[i]!) i++
      entry.sum += value
      entry.count += 1
      if (i < bounds.length) entry.bucketValues[buckets[i]!]! += 1
    },
  }
}

/** The key of the series with these labels (as prom-client reads them: as text), once it exists. */
function keyOf(entries: Entries<{ readonly labels: Labels }>, labels: Labels): string | undefined {
  for (const key in entries.hashMap) {
    const e = entries.hashMap[key]!.labels
    if (entries.labelNames.every((n) => `${e[n]}` === `${labels[n]}`)) return key
  }
  return undefined
}
