// Data-quality rules end to end on a real Kafka and PostgreSQL: a rules file → the gateway's
// workers → 207 with per-event rule errors, dead letters naming the rule, flags in a record
// header → the correlator → the facts' quality_flags and the campaign quality view. Then the
// file is edited while requests flow (no request fails), and a broken edit keeps the old rules.
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, ProduceAcks, Producer, stringSerializer } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { KafkaSource } from '../../correlator/kafka-source.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import { inputTopics, sourceTopics, topicNames } from '../../correlator/topics.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeWire } from '../../events/wire.js'
import { generateEvents } from '../../generator/funnel.js'
import { defaultRulesPath } from '../../quality/rules-file.js'
import { PostgresStorage } from '../../storage/postgres.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { post, type RunningGateway, startGateway } from '../support/gateway.js'
import { freshDatabase } from '../support/postgres.js'

const brokers = inject('kafkaBrokers')
const postgresUrl = inject('postgresUrl')
const SECRET = 'quality-test-secret-5c1d'
const dir = mkdtempSync(join(tmpdir(), 'adgate-quality-'))
const rulesFile = join(dir, 'rules.yaml')

const json = { 'content-type': 'application/json', 'x-api-key': SECRET }
const now = Date.now()

function impressions(n: number, seed: number): Record<string, unknown>[] {
  return generateEvents('impression', n, seed).map((e, i) => ({
    ...e,
    event_time: now - 60_000 + i,
    campaign_id: 'cmp-quality',
  }))
}

async function metrics(gw: RunningGateway): Promise<string> {
  return (await fetch(`${gw.url}/metrics`)).text()
}

/** The value of the sample of `name` whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]))
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3])
  }
  return undefined
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('data-quality rules through the gateway, Kafka and the correlator', () => {
  let gw: RunningGateway
  const admin = new Admin({ clientId: 'adgate-quality-test', bootstrapBrokers: brokers })
  const prefix = `q${randomBytes(4).toString('hex')}.`

  beforeAll(async () => {
    copyFileSync(defaultRulesPath(), rulesFile)
    gw = await startGateway(brokers, {
      ADGATE_QUALITY_RULES: rulesFile,
      ADGATE_API_KEYS: `ssp-q:${SECRET}:*`,
    })
  }, 60_000)

  afterAll(async () => {
    await gw?.stop()
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix))
    if (mine.length > 0) await admin.deleteTopics({ topics: mine })
    await admin.close()
  })

  it('rejects by rule (207, dead letter with the rule), flags into storage, scores by source', async () => {
    const from = await endOffsets(brokers, ['adgate.impressions', 'adgate.dlq'])
    const events = impressions(6, 71)
    events[1]!.currency = 'ZZZ' // impression.currency_iso4217: reject
    events[3]!.country = 'XX' // impression.country_iso3166: flag
    events[4]!.event_id = '' // schema: reject
    const res = await post(`${gw.url}/v1/impressions`, JSON.stringify(events), json)
    expect(res.status).toBe(207)
    expect(res.body).toMatchObject({ accepted: 4, rejected: 2 })
    const errors = res.body.errors as { index: number; field: string; reason: string }[]
    expect(errors.map((e) => [e.index, e.field])).toEqual([
      [1, 'currency'],
      [4, 'event_id'],
    ])
    expect(errors[0]!.reason).toBe(
      'rule impression.currency_iso4217: currency must be an iso4217 code, got "ZZZ"',
    )

    const requestId = res.body.request_id as string
    const mineOnly = (r: ReadRecord) => r.headers['adgate.request_id'] === requestId
    const records = await readFrom(
      brokers,
      from,
      (rs) => rs.filter(mineOnly).length === 6, // 4 accepted + 2 dead letters
    )
    const accepted = records.filter((r) => mineOnly(r) && r.topic === 'adgate.impressions')
    expect(accepted.length).toBe(4)
    for (const r of accepted) {
      const flagged = r.value.event_id === events[3]!.event_id
      expect(r.headers['adgate.quality_flags'], String(r.value.event_id)).toBe(
        flagged ? 'impression.country_iso3166' : undefined,
      )
    }
    // Dead letters spread over the DLQ's partitions: in body order once sorted.
    const dead = records
      .filter((r) => mineOnly(r) && r.topic === 'adgate.dlq')
      .map((r) => r.value)
      .sort((a, b) => (a.index as number) - (b.index as number))
    expect(dead.map((d) => [d.index, d.field])).toEqual([
      [1, 'currency'],
      [4, 'event_id'],
    ])
    expect(dead[0]!.reason).toMatch(/^rule impression\.currency_iso4217: /)

    const fams = await metrics(gw)
    const q = { source: 'ssp-q', type: 'impression' }
    expect(sample(fams, 'adgate_quality_events_total', { ...q, verdict: 'passed' })).toBe(3)
    expect(sample(fams, 'adgate_quality_events_total', { ...q, verdict: 'flagged' })).toBe(1)
    expect(sample(fams, 'adgate_quality_events_total', { ...q, verdict: 'rejected' })).toBe(1)
    expect(sample(fams, 'adgate_quality_score', { ...q, window: '1m' })).toBeCloseTo(3 / 5, 12)
    expect(sample(fams, 'adgate_quality_score', { ...q, window: '1h' })).toBeCloseTo(3 / 5, 12)
    expect(sample(fams, 'adgate_quality_threshold', { level: 'minimum' })).toBe(0.8)

    // The correlator: the gateway's records (headers included) on topics of this test's own.
    const names = topicNames(prefix)
    await admin.createTopics({ topics: sourceTopics(names), partitions: 2, replicas: 1 })
    const producer = new Producer({
      clientId: 'adgate-quality-test',
      bootstrapBrokers: brokers,
      acks: ProduceAcks.ALL,
      serializers: { headerKey: stringSerializer, headerValue: stringSerializer },
    })
    await producer.send({
      messages: accepted.map((r) => ({
        topic: names.impression,
        key: r.key === null ? undefined : Buffer.from(r.key),
        value: encodeWire(EVENT_SCHEMAS.impression, r.value),
        headers: r.headers,
      })),
    })
    await producer.close()
    const db = await freshDatabase(postgresUrl)
    const storage = await PostgresStorage.open(db.url)
    const source = new KafkaSource({
      brokers,
      clientId: 'adgate-quality-test',
      groupId: `${prefix}group`,
      topics: inputTopics(false, names),
      names,
    })
    await source.partitions()
    const c = new Correlator(
      { rules: DEFAULT_RULES, storage, source, names, checkpointMs: 200, idleMs: 3_600_000 },
      2,
    )
    c.start().catch((err: unknown) => console.error('correlator failed', err))
    try {
      const rows = await until('the impressions in PostgreSQL', async () => {
        const r = await storage.query('SELECT event_id, quality_flags FROM impressions ORDER BY event_id')
        return r.length === 4 ? r : undefined
      })
      expect(rows.filter((r) => r.quality_flags !== null)).toEqual([
        { event_id: events[3]!.event_id, quality_flags: 'impression.country_iso3166' },
      ])
      const view = await storage.query('SELECT * FROM attributed_events WHERE quality_flags IS NOT NULL')
      expect(view.length).toBe(1)
      const quality = await until('the campaign quality rows', async () => {
        const r = await storage.query(
          "SELECT events, flagged, score FROM campaign_quality_hour WHERE campaign_id = 'cmp-quality'",
        )
        return r.length === 1 && Number(r[0]!.events) === 4 ? r : undefined
      })
      expect(quality[0]).toEqual({ events: 4, flagged: 1, score: 0.75 })
    } finally {
      await c.stop()
      await storage.close()
      await db.drop()
    }
  }, 120_000)

  it('reloads an edited rules file without failing a request; a broken edit keeps the old rules', async () => {
    const probe = impressions(1, 72)[0]!
    probe.creative_id = null
    const body = JSON.stringify([probe])
    expect((await post(`${gw.url}/v1/impressions`, body, json)).status).toBe(200)

    // Requests keep flowing while the file changes under them.
    let flowing = true
    const statuses: number[] = []
    const traffic = (async () => {
      let seed = 100
      while (flowing)
        statuses.push(
          (await post(`${gw.url}/v1/impressions`, JSON.stringify(impressions(20, seed++)), json)).status,
        )
    })()
    try {
      const stricter = [
        readFileSync(rulesFile, 'utf8'),
        '  - name: impression.creative_required',
        '    type: impression',
        '    kind: not_null',
        '    field: creative_id',
        '    severity: reject',
        '',
      ].join('\n')
      writeFileSync(rulesFile, stricter)
      await until('the reload', async () =>
        (sample(await metrics(gw), 'adgate_quality_rules_reloads_total', { result: 'ok' }) ?? 0) >= 1
          ? true
          : undefined,
      )
      const rejected = await post(`${gw.url}/v1/impressions`, body, json)
      expect(rejected.status).toBe(400)
      expect(rejected.body.errors).toEqual([
        {
          index: 0,
          field: 'creative_id',
          reason: 'rule impression.creative_required: creative_id must be set',
          errors: [
            { field: 'creative_id', reason: 'rule impression.creative_required: creative_id must be set' },
          ],
        },
      ])

      writeFileSync(rulesFile, `${stricter}\n  - name: broken\n    kind: range\n`)
      await until('the refused reload', async () =>
        (sample(await metrics(gw), 'adgate_quality_rules_reloads_total', { result: 'failed' }) ?? 0) >= 1
          ? true
          : undefined,
      )
      expect(gw.logs()).toMatch(/quality rules not reloaded[^\n]*|rules\.yaml: rule broken/)
      expect(gw.logs()).toContain('rule broken (#')
      expect((await post(`${gw.url}/v1/impressions`, body, json)).status).toBe(400)
    } finally {
      flowing = false
      await traffic
    }
    expect(statuses.length).toBeGreaterThan(0)
    expect(statuses.filter((s) => s !== 200)).toEqual([])
  }, 60_000)
})

describe('a rules file with errors', () => {
  it('stops the gateway at start-up, naming the file, the rule and the field', async () => {
    const bad = join(dir, 'bad.yaml')
    writeFileSync(
      bad,
      'rules:\n  - name: cost\n    type: impression\n    kind: range\n    field: costs\n    max: 1\n    severity: reject\n',
    )
    await expect(startGateway(brokers, { ADGATE_QUALITY_RULES: bad })).rejects.toThrow(
      /bad\.yaml: rule cost \(#1\): field: impression events have no field \\?"costs\\?"/,
    )
  })
})
