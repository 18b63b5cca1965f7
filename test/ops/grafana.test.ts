// ops/grafana/adgate.json parses as a dashboard and every query in it names only metrics of the
// README catalog, prom-client defaults, or adgate's recording rules: a renamed metric or rule
// cannot leave the dashboard silently empty.
import { readFileSync } from 'node:fs'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { readCatalog } from '../support/metrics-catalog.js'

const root = new URL('../../', import.meta.url)
const dashboard = JSON.parse(readFileSync(new URL('ops/grafana/adgate.json', root), 'utf8')) as {
  title: string
  uid: string
  templating: { list: { name: string; type: string; query: string }[] }
  panels: Panel[]
}

interface Panel {
  id: number
  type: string
  title: string
  gridPos: { h: number; w: number; x: number; y: number }
  datasource?: { type: string; uid: string }
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[]
}

const DATASOURCE = '$'.concat('{datasource}')
const PROMQL_WORDS = new Set([
  'sum',
  'rate',
  'increase',
  'histogram_quantile',
  'max',
  'min',
  'avg',
  'count',
  'irate',
])

async function knownNames(): Promise<Set<string>> {
  const names = new Set<string>(['up'])
  const withSeries = (name: string, type: string) => {
    names.add(name)
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s)
  }
  for (const row of readCatalog()) withSeries(row.name, row.type)
  for (const prefix of ['adgate_', 'adgate_correlator_']) {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry, prefix })
    for (const m of await registry.getMetricsAsJSON()) withSeries(m.name, String(m.type))
  }
  const rules = parse(readFileSync(new URL('ops/prometheus/rules/adgate-recording.yml', root), 'utf8')) as {
    groups: { rules: { record: string }[] }[]
  }
  for (const g of rules.groups) for (const r of g.rules) names.add(r.record)
  return names
}

/** The metric and rule names an expression reads: labels, ranges, grouping and strings removed. */
function namesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
  return [...stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .map((m) => m[0])
    .filter((w) => !PROMQL_WORDS.has(w) && !/^(and|or|unless)$/.test(w))
}

const panels = dashboard.panels.filter((p) => p.type !== 'row')
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })))

describe('the Grafana dashboard', () => {
  it('is a dashboard with a Prometheus data source variable and laid-out panels', () => {
    expect(dashboard.title).toBe('adgate')
    expect(dashboard.uid).toMatch(/^[a-z0-9-]+$/)
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }),
    )
    expect(panels.length).toBeGreaterThan(20)
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length)
    for (const p of panels) {
      expect(p.datasource?.uid, p.title).toBe(DATASOURCE)
      expect(p.targets?.length, `${p.title}: no query`).toBeGreaterThan(0)
      expect(p.gridPos.x + p.gridPos.w, `${p.title}: wider than the grid`).toBeLessThanOrEqual(24)
    }
  })

  it('queries only metrics and recording rules that exist', async () => {
    const known = await knownNames()
    for (const { panel, expr } of exprs) {
      const names = namesIn(expr)
      expect(names.length, `${panel}: ${expr} reads no metric`).toBeGreaterThan(0)
      for (const name of names)
        expect(known.has(name), `${panel}: unknown metric or rule ${name} in ${expr}`).toBe(true)
    }
  })

  it('shows every SLO and the golden signals', () => {
    const all = exprs.map((e) => e.expr).join('\n')
    for (const sli of ['availability_errors', 'latency_slow', 'durability_loss', 'freshness_late'])
      expect(all).toContain(`adgate:${sli}:ratio_rate1h`)
    for (const signal of [
      'adgate_http_requests_total', // traffic and errors
      'adgate:events:rate5m',
      'adgate:request_duration_seconds:p99_rate5m', // latency
      'adgate:ingest_to_ack_seconds:p99_rate5m',
      'adgate:worker_pool_utilization:ratio_rate5m', // saturation
      'adgate_nodejs_eventloop_lag_p99_seconds',
      'adgate:spool_fill:ratio',
    ])
      expect(all).toContain(signal)
  })

  it('finds names in expressions (self-check)', () => {
    expect(namesIn('sum by (le, route) (rate(x_bucket{status_class="2xx",le="0.25"}[5m])) / y:z:w')).toEqual([
      'x_bucket',
      'y:z:w',
    ])
  })
})
