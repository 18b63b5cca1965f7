import { Counter, Gauge, type Registry } from 'prom-client'

/**
 * Metrics whose values are kept by their owner (a producer's totals, a spool's size) and read by
 * prom-client's collect() when /metrics is scraped: nothing is copied in on the hot path, and the
 * value exposed is the owner's at that moment.
 */
export interface Scraped {
  readonly name: string
  readonly help: string
}

/** A gauge set from `read()` at each scrape; with `labels`, one series per label value. */
export function scrapedGauge(registry: Registry, m: Scraped, read: () => number): Gauge {
  return new Gauge({
    ...m,
    registers: [registry],
    collect() {
      this.set(read())
    },
  })
}

/** A counter equal to the owner's running total `read()` (which only grows) at each scrape. */
export function scrapedTotal(registry: Registry, m: Scraped, read: () => number): Counter {
  return new Counter({
    ...m,
    registers: [registry],
    collect() {
      this.reset()
      this.inc(read())
    },
  })
}

/** A counter with one label, each value's running total read at each scrape. */
export function scrapedTotals<L extends string>(
  registry: Registry,
  m: Scraped & { readonly label: string },
  values: readonly L[],
  read: (value: L) => number,
): Counter {
  return new Counter({
    name: m.name,
    help: m.help,
    labelNames: [m.label],
    registers: [registry],
    collect() {
      this.reset()
      for (const v of values) this.inc({ [m.label]: v }, read(v))
    },
  })
}
