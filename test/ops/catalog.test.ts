// The README's metric catalog is the truth: a real gateway, after traffic that touches every
// labelled family, must expose exactly the documented names, types and label sets, with label
// values from small fixed sets; the correlator's registry likewise. And its logs: lifecycle and
// errors only, request ids on errors, no secrets, no event contents.
import { collectDefaultMetrics, Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import WebSocket from 'ws'
import { createCorrelatorMetrics } from '../../correlator/metrics.js'
import { EVENT_INFO, EVENT_TYPES } from '../../events/catalog.js'
import { ERRORS } from '../../events/errors.js'
import { CONTENT_TYPE, encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { post, type RunningGateway, startGateway } from '../support/gateway.js'
import { type CatalogRow, type Family, parseExposition, readCatalog } from '../support/metrics-catalog.js'

const brokers = inject('kafkaBrokers')
const SECRET = 'ops-catalog-secret-7f3a'
const OTHER = 'ops-other-secret-91bc'

/** Allowed values of every label on adgate's own families (bounded: never ids or keys). */
const LABEL_VALUES: Record<string, (v: string) => boolean> = {
  route: (v) => /^\/v1\/(bids|impressions|clicks|conversions|stream)$/.test(v),
  status: (v) => /^[1-5]\d\d$/.test(v),
  status_class: (v) => /^[1-5]xx$/.test(v),
  type: (v) => (EVENT_TYPES as readonly string[]).includes(v),
  encoding: (v) => ['json', 'ndjson', 'csv', 'avro'].includes(v),
  outcome: (v) => ['accepted', 'rejected', 'failed'].includes(v),
  reason: (v) => v in ERRORS,
  destination: (v) => ['kafka', 'spool'].includes(v),
  result: (v) => ['ok', 'failed', 'waited', 'refused'].includes(v),
  // The data-quality metrics' source: an API key's name, a set fixed by ADGATE_API_KEYS.
  source: (v) => ['ops', 'other', 'anonymous'].includes(v),
  verdict: (v) => ['passed', 'flagged', 'rejected'].includes(v),
  window: (v) => ['1m', '1h'].includes(v),
  level: (v) => ['healthy', 'minimum'].includes(v),
}

async function defaultMetrics(prefix: string): Promise<Map<string, { type: string; labels: string[] }>> {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix })
  const out = new Map<string, { type: string; labels: string[] }>()
  for (const m of await registry.getMetricsAsJSON()) {
    const labels = (registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? []
    out.set(m.name, { type: String(m.type), labels: [...labels] })
  }
  return out
}

const catalog = readCatalog()
const section = (s: string) => catalog.filter((r) => r.section === s)

describe('the README metric catalog', () => {
  it('has the three tables, no duplicates, and Prometheus names', () => {
    expect(section('Gateway').length).toBeGreaterThan(20)
    expect(section('Correlator').length).toBeGreaterThan(5)
    expect(section('Process and runtime').length).toBeGreaterThan(3)
    expect(new Set(catalog.map((r) => r.name)).size).toBe(catalog.length)
    for (const r of catalog) {
      expect(r.name, r.name).toMatch(/^adgate_/)
      expect(['counter', 'gauge', 'histogram'], r.name).toContain(r.type)
      if (r.type === 'counter') expect(r.name, 'counters end in _total').toMatch(/_total$/)
      else expect(r.name, 'only counters end in _total').not.toMatch(/_total$/)
      expect(r.name, 'base units').not.toMatch(/_(ms|milliseconds|kb|mb|kib|mib)(_|$)/)
      for (const l of r.labels) expect(l, `${r.name}: label`).toMatch(/^[a-z_]+$/)
    }
  })

  it('lists the correlator registry exactly', async () => {
    const { registry } = createCorrelatorMetrics()
    const defaults = await defaultMetrics('adgate_correlator_')
    const own = (await registry.getMetricsAsJSON()).filter((m) => !defaults.has(m.name))
    const documented = section('Correlator')
    expect(own.map((m) => m.name).sort(), 'add new correlator metrics to the README table').toEqual(
      documented.map((r) => r.name).sort(),
    )
    for (const row of documented) {
      const metric = registry.getSingleMetric(row.name) as unknown as { labelNames?: string[] }
      const json = own.find((m) => m.name === row.name)!
      expect(String(json.type), row.name).toBe(row.type)
      expect([...(metric.labelNames ?? [])].sort(), row.name).toEqual([...row.labels].sort())
    }
  })

  it('documents process metrics that prom-client really exports', async () => {
    const defaults = await defaultMetrics('adgate_')
    for (const row of section('Process and runtime')) {
      const d = defaults.get(row.name)
      expect(d, `${row.name} is not a prom-client default metric`).toBeDefined()
      expect(d!.type, row.name).toBe(row.type)
      expect(d!.labels.sort(), row.name).toEqual([...row.labels].sort())
    }
  })
})

describe.skipIf(brokers.length === 0)('a running gateway', () => {
  let gw: RunningGateway
  let families: Map<string, Family>
  let startupLines = 0
  const seed = 31_000 + (Date.now() % 100_000)
  const eventIds: string[] = []

  beforeAll(async () => {
    gw = await startGateway(brokers, {
      ADGATE_API_KEYS: `ops:${SECRET}:*,other:${OTHER}:click`,
      ADGATE_FAULT_INJECTION: 'on',
      ADGATE_DECODE_TIMEOUT_MS: '2000',
    })
    startupLines = gw.logs().trim().split('\n').length
  })
  afterAll(async () => {
    expect(await gw.stop()).toBe(0)
  })

  const send = (
    path: string,
    body: Buffer | string,
    contentType: string,
    headers: Record<string, string> = {},
  ) => post(`${gw.url}${path}`, body, { 'content-type': contentType, 'x-api-key': SECRET, ...headers })

  it('answers traffic of every kind without logging per request', async () => {
    let n = 0
    for (const type of EVENT_TYPES) {
      const events = generateEvents(type, 20, seed + n++)
      for (const e of events) eventIds.push(String((e as Record<string, unknown>).event_id))
      const encoding = type === 'bid' ? 'avro' : type === 'impression' ? 'json' : 'csv'
      const res = await send(
        `/v1/${EVENT_INFO[type].route}`,
        encodeEvents(type, events, encoding),
        CONTENT_TYPE[encoding],
      )
      expect(res.status, JSON.stringify(res.body)).toBe(200)
    }
    const mixed = generateEvents('impression', 5, seed + 10)
    ;(mixed[1] as Record<string, unknown>).cost_micros = -1
    expect((await send('/v1/impressions', JSON.stringify(mixed), 'application/json')).status).toBe(207)
    expect((await send('/v1/impressions', '{"not json', 'application/json')).status).toBe(400)
    expect((await send('/v1/impressions', 'x', 'text/plain')).status).toBe(415)
    expect((await send('/v1/impressions', '[]', 'application/json', { 'x-api-key': OTHER })).status).toBe(403)
    expect(
      (await post(`${gw.url}/v1/impressions`, '[]', { 'content-type': 'application/json' })).status,
    ).toBe(401)
    expect(
      (
        await post(`${gw.url}/v1/impressions`, '[]', {
          'content-type': 'application/json',
          authorization: `Bearer ${SECRET}x`,
        })
      ).status,
    ).toBe(401)

    // one WebSocket batch
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/stream`, {
      headers: { 'x-api-key': SECRET },
    })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    const ack = new Promise<{ status: number }>((resolve) =>
      ws.once('message', (d) => resolve(JSON.parse(d.toString()))),
    )
    const body = encodeEvents('click', generateEvents('click', 5, seed + 11), 'ndjson')
    ws.send(
      Buffer.concat([
        Buffer.from(`${JSON.stringify({ seq: 1, type: 'click', encoding: 'ndjson' })}\n`),
        body,
      ]),
    )
    expect((await ack).status).toBe(200)
    ws.close()

    // No line per request or event: the log has not grown.
    expect(gw.logs().trim().split('\n').length).toBe(startupLines)
  })

  it('logs an error with the request id when a decoder thread dies, and recovers', async () => {
    const armed = await fetch(`${gw.url}/_faults/worker?mode=crash`, { method: 'POST' })
    expect(armed.status).toBe(200)
    const res = await send(
      '/v1/impressions',
      JSON.stringify(generateEvents('impression', 3, seed + 12)),
      'application/json',
      {
        'x-request-id': 'ops-crash-1',
      },
    )
    expect(res.status).toBe(503)
    // The line reaches our pipe a moment after the answer.
    const find = () =>
      gw
        .logs()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.requestId === 'ops-crash-1')
    for (let i = 0; i < 50 && !find(); i++) await new Promise((r) => setTimeout(r, 100))
    const error = find()
    expect(error, gw.logs()).toMatchObject({ level: 50, msg: 'decode failed in the worker pool' })
    // recovered: a fresh thread serves the next request
    const again = await send(
      '/v1/impressions',
      JSON.stringify(generateEvents('impression', 3, seed + 13)),
      'application/json',
    )
    expect(again.status).toBe(200)
  })

  it('every log line is JSON with a level, a time and a message, and holds no secret or event data', () => {
    const text = gw.logs()
    expect(text).not.toContain(SECRET)
    expect(text).not.toContain(OTHER)
    for (const id of eventIds) expect(text).not.toContain(id)
    for (const line of text.trim().split('\n')) {
      const l = JSON.parse(line) as Record<string, unknown>
      expect(typeof l.level, line).toBe('number')
      expect(typeof l.time, line).toBe('string')
      expect(typeof l.msg, line).toBe('string')
    }
  })

  it('exposes exactly the documented gateway and process metrics', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text()
    families = parseExposition(text)
    expect(text).not.toContain(SECRET)
    // Key names are labels only as the quality metrics' source (a set fixed by the config).
    for (const line of text.split('\n'))
      if (line.includes('"ops"'))
        expect(line, 'key name outside a source label').toMatch(/^adgate_quality_\w+\{source="ops"/)
    const defaults = await defaultMetrics('adgate_')
    const documented = new Map<string, CatalogRow>(
      [...section('Gateway'), ...section('Process and runtime')].map((r) => [r.name, r]),
    )
    for (const f of families.values()) {
      expect(
        documented.has(f.name) || defaults.has(f.name),
        `${f.name} is exposed but not in the README's Metrics table`,
      ).toBe(true)
    }
    for (const row of section('Gateway')) {
      const f = families.get(row.name)
      expect(f, `${row.name} is documented but not exposed`).toBeDefined()
      expect(f!.type, `${row.name}: type`).toBe(row.type)
      expect(f!.samples, `${row.name}: no samples after traffic`).toBeGreaterThan(0)
      expect([...f!.labels].sort(), `${row.name}: labels`).toEqual([...row.labels].sort())
      for (const [label, values] of f!.values) {
        const ok = LABEL_VALUES[label]
        expect(ok, `${row.name}: label ${label} has no documented value set`).toBeDefined()
        for (const v of values) expect(ok!(v), `${row.name}{${label}="${v}"}: unbounded value`).toBe(true)
      }
    }
  })

  it('counts what happened', () => {
    const values = (name: string, label: string) => [...(families.get(name)?.values.get(label) ?? [])].sort()
    expect(values('adgate_http_requests_total', 'status')).toEqual([
      '200',
      '207',
      '400',
      '401',
      '403',
      '415',
      '503',
    ])
    expect(values('adgate_events_total', 'outcome')).toEqual(['accepted', 'rejected'])
    expect(values('adgate_events_rejected_total', 'reason')).toEqual(['INVALID_EVENT', 'MALFORMED_BODY'])
    expect(values('adgate_worker_tasks_total', 'result')).toEqual(['failed', 'ok'])
    expect(values('adgate_websocket_batches_total', 'status')).toEqual(['200'])
    expect(values('adgate_request_duration_seconds', 'route')).toContain('/v1/stream')
    expect(values('adgate_request_duration_seconds', 'status_class')).toEqual(['2xx', '4xx', '5xx'])
  })
})
