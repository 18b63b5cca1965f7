// Issue 14's "done when" for storage: the IAB's OpenRTB 2.6 example requests (v3 bids) posted
// through the real gateway → Kafka → the correlator (its Kafka consumer) → DuckDB and PostgreSQL.
// The bid → impression join on the auction id works, the win rate is right, the 0.03 floor is
// stored exactly (0.03 and 30000 micros), and ext / _unknown (beside the request and inside it)
// read back from the raw tables byte for byte as Kafka holds them.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, ProduceAcks, Producer, stringSerializer } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { KafkaSource } from '../../correlator/kafka-source.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import type { Storage } from '../../correlator/storage.js'
import { inputTopics, sourceTopics, topicNames } from '../../correlator/topics.js'
import { EVENT_INFO, type EventType } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeWire } from '../../events/wire.js'
import { ensureTopics } from '../../kafka/topics.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { PostgresStorage } from '../../storage/postgres.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { post, type RunningGateway, startGateway } from '../support/gateway.js'
import { freshDatabase } from '../support/postgres.js'

const brokers = inject('kafkaBrokers')
const postgresUrl = inject('postgresUrl')
const SECRET = `openrtb-raw-${randomBytes(6).toString('hex')}`
const json = { 'content-type': 'application/json', 'x-api-key': SECRET }
const dir = mkdtempSync(join(tmpdir(), 'adgate-openrtb-raw-'))
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/openrtb/${name}.json`, import.meta.url), 'utf8'))

type SqlStorage = Storage & { query(sql: string): Promise<Record<string, unknown>[]> }

// The examples with distinct request ids (the others repeat these ids), as their senders have them;
// the first also carries ext and fields OpenRTB does not define, at the top and inside its imp.
const ex1 = fixture('ex1-simple-banner')
const requests: Record<string, unknown>[] = [
  {
    ...ex1,
    imp: [{ ...ex1.imp[0], x_imp_note: 'kept', ext: { gpid: '/1/home', nested: { a: [1, 2.5] } } }],
    ext: { ssp: { tier: 1, k: 'v' } },
    x_unmodelled: { a: [1, 2.5, 'x'], b: null },
  },
  fixture('ex2-expandable'),
  fixture('ex3-mobile'),
  fixture('ex4-video'),
]
const BESIDE_REQUEST = { x_bidder: { model: 'v7', scores: [0.5, null] } }
const campaign = `cmp-rtb-${randomBytes(3).toString('hex')}`
const t0 = Date.now() - 60_000

/** Polls `fn` until it gives a value; on time-out, says what it last saw. */
async function until<T>(
  what: string,
  fn: () => Promise<[T | undefined, unknown]>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const [v, seen] = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last seen ${JSON.stringify(seen)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe.skipIf(brokers.length === 0 || !postgresUrl)('OpenRTB 2.6 bids end to end into the tables', () => {
  let gw: RunningGateway
  const admin = new Admin({ clientId: 'adgate-openrtb-raw-test', bootstrapBrokers: brokers })
  const prefix = `r${randomBytes(4).toString('hex')}.`
  const names = topicNames(prefix)
  let records: ReadRecord[] = []

  beforeAll(async () => {
    gw = await startGateway(brokers, { ADGATE_API_KEYS: `ssp-rtb:${SECRET}:*` })
    const from = await endOffsets(brokers, [EVENT_INFO.bid.topic, EVENT_INFO.impression.topic])
    // The bidder's envelope beside each request: its campaign and price, so wins count per campaign.
    // The first also carries a field beside its request (the envelope's _unknown, bid v3).
    const bids = requests.map((request, i) => ({
      event_id: `bid-${prefix}${i}`,
      event_time: t0 + i * 1000,
      campaign_id: campaign,
      bid_price_micros: 1_000_000 + i,
      request,
      ...(i === 0 ? BESIDE_REQUEST : {}),
    }))
    const res = await post(`${gw.url}/v1/bids`, JSON.stringify(bids), json)
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    // Three of the four auctions won: impressions on their request ids.
    const impressions = requests.slice(0, 3).map((r, i) => ({
      event_id: `imp-${prefix}${i}`,
      event_time: t0 + i * 1000 + 500,
      impression_id: `imp-${prefix}${i}`,
      auction_id: r.id,
      campaign_id: campaign,
      cost_micros: 800_000,
      ...(i === 0 ? { x_note: { seen: [1, 'two'] } } : {}),
    }))
    const res2 = await post(`${gw.url}/v1/impressions`, JSON.stringify(impressions), json)
    expect(res2.status, JSON.stringify(res2.body)).toBe(200)
    const ids = new Set([res.body.request_id, res2.body.request_id])
    const mine = (r: ReadRecord) => ids.has(r.headers['adgate.request_id'])
    records = (await readFrom(brokers, from, (rs) => rs.filter(mine).length === 7)).filter(mine)
    expect(records.length).toBe(7)

    // The gateway's records, bytes and keys as they are, on topics of this test's own.
    await ensureTopics(admin, sourceTopics(names), { partitions: 2, replication: 1 })
    const producer = new Producer({
      clientId: 'adgate-openrtb-raw-test',
      bootstrapBrokers: brokers,
      acks: ProduceAcks.ALL,
      // A produce retried on a loaded machine must not append a record twice (the raw tables
      // would rightly hold both).
      idempotent: true,
      serializers: { headerKey: stringSerializer, headerValue: stringSerializer },
    })
    const typeOf = (topic: string): EventType => (topic === EVENT_INFO.bid.topic ? 'bid' : 'impression')
    await producer.send({
      messages: records.map((r) => ({
        topic: names[typeOf(r.topic)],
        key: r.key === null ? undefined : Buffer.from(r.key),
        value: encodeWire(EVENT_SCHEMAS[typeOf(r.topic)], r.value),
        headers: r.headers,
      })),
    })
    await producer.close()
  }, 120_000)

  afterAll(async () => {
    await gw?.stop()
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix))
    if (topics.length > 0) await admin.deleteTopics({ topics })
    await admin.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** Runs the correlator over this test's topics into `storage` until the three wins are in. */
  async function correlate(storage: SqlStorage, group: string): Promise<void> {
    const source = new KafkaSource({
      brokers,
      clientId: 'adgate-openrtb-raw-test',
      groupId: `${prefix}${group}`,
      topics: inputTopics(false, names),
      names,
    })
    await source.partitions()
    const c = new Correlator(
      { rules: DEFAULT_RULES, storage, source, names, checkpointMs: 200, idleMs: 3_600_000, rawEvents: true },
      2,
    )
    c.start().catch((err: unknown) => console.error('correlator failed', err))
    try {
      await until('the joined impressions and the raw rows', async () => {
        const joined = await storage.query(
          'SELECT count(*)::INT AS n FROM impressions WHERE bid_event_id IS NOT NULL',
        )
        const raw = await storage.query(
          'SELECT (SELECT count(*) FROM raw_bids)::INT + (SELECT count(*) FROM raw_impressions)::INT AS n, (SELECT count(DISTINCT event_id) FROM raw_bids)::INT + (SELECT count(DISTINCT event_id) FROM raw_impressions)::INT AS ids',
        )
        const seen = { joined: Number(joined[0]!.n), raw: Number(raw[0]!.n), ids: Number(raw[0]!.ids) }
        return [seen.joined === 3 && seen.raw === 7 ? true : undefined, seen]
      })
    } finally {
      await c.stop()
    }
  }

  async function expectTables(storage: SqlStorage, decimal: string): Promise<void> {
    const q = (sql: string) => storage.query(sql)
    // The join on the auction id: each impression carries its bid.
    const joined = await q(
      'SELECT auction_id, bid_event_id, bid_price_micros FROM impressions ORDER BY bid_event_id',
    )
    expect(joined.map((r) => [r.auction_id, r.bid_event_id, Number(r.bid_price_micros)])).toEqual(
      requests.slice(0, 3).map((r, i) => [r.id, `bid-${prefix}${i}`, 1_000_000 + i]),
    )
    const [stats] = await storage.stats({ granularity: 'hour', campaign })
    expect(stats).toMatchObject({ bids: 4, wins: 3, impressions: 3, win_rate: 0.75 })

    // Floors: the decimal as sent, and its micros.
    const floors = await q(
      'SELECT auction_id, bidfloor::VARCHAR AS text, bidfloor = 0.03 AS exact, bidfloor_micros, bidfloorcur, media, w, h FROM raw_bid_imps ORDER BY event_time',
    )
    expect(floors.map((f) => [f.auction_id, f.text, Number(f.bidfloor_micros)])).toEqual([
      [requests[0]!.id, decimal, 30000],
      [requests[1]!.id, decimal, 30000],
      [requests[2]!.id, decimal === '0.03' ? '0.5' : '0.500000000', 500000],
      [requests[3]!.id, decimal, 30000],
    ])
    expect(floors.map((f) => f.exact)).toEqual([true, true, false, true])
    expect(floors[0]).toMatchObject({ media: 'banner', w: 300, h: 250 })

    // ext and _unknown, byte for byte as in Kafka.
    const kafkaBid = records.find((r) => r.value.event_id === `bid-${prefix}0`)!.value as {
      _unknown: string
      request: { ext: string; _unknown: string; imp: { ext: string; _unknown: string }[] }
    }
    const [bid] = await q(
      `SELECT _unknown, ext, request_unknown, event, site_domain, publisher_id FROM raw_bids WHERE event_id = 'bid-${prefix}0'`,
    )
    expect(bid!._unknown).toBe(kafkaBid._unknown)
    expect(bid!._unknown).toBe(JSON.stringify(BESIDE_REQUEST))
    expect(bid!.ext).toBe(kafkaBid.request.ext)
    expect(bid!.ext).toBe('{"ssp":{"tier":1,"k":"v"}}')
    expect(bid!.request_unknown).toBe(kafkaBid.request._unknown)
    expect(bid!.request_unknown).toBe('{"x_unmodelled":{"a":[1,2.5,"x"],"b":null}}')
    expect(bid).toMatchObject({ site_domain: 'www.foobar.com', publisher_id: '8953' })
    // The whole event: the request exactly as posted, and what was beside it.
    expect(JSON.parse(bid!.event as string)).toMatchObject({ ...BESIDE_REQUEST, request: requests[0] })
    const [imp] = await q(`SELECT ext, _unknown FROM raw_bid_imps WHERE event_id = 'bid-${prefix}0'`)
    expect(imp).toEqual({ ext: kafkaBid.request.imp[0]!.ext, _unknown: kafkaBid.request.imp[0]!._unknown })
    expect(imp!._unknown).toBe('{"x_imp_note":"kept"}')
    // Every example's request reads back whole from its row.
    const events = await q('SELECT event FROM raw_bids ORDER BY event_time')
    expect(events.map((e) => JSON.parse(e.event as string).request)).toEqual(requests)

    const kafkaImp = records.find((r) => r.value.event_id === `imp-${prefix}0`)!.value as { _unknown: string }
    const [impression] = await q(
      `SELECT _unknown, source FROM raw_impressions WHERE event_id = 'imp-${prefix}0'`,
    )
    expect(impression).toEqual({ _unknown: kafkaImp._unknown, source: 'ssp-rtb' })
    expect(impression!._unknown).toBe('{"x_note":{"seen":[1,"two"]}}')
  }

  it('DuckDB', async () => {
    const storage = await DuckDbStorage.open(join(dir, 'rtb.duckdb'))
    try {
      await correlate(storage, 'duckdb')
      await expectTables(storage, '0.030000000')
    } finally {
      await storage.close()
    }
  }, 150_000)

  it('PostgreSQL', async () => {
    const db = await freshDatabase(postgresUrl)
    const storage = await PostgresStorage.open(db.url)
    try {
      await correlate(storage, 'postgres')
      await expectTables(storage, '0.03')
    } finally {
      await storage.close()
      await db.drop()
    }
  }, 150_000)
})
