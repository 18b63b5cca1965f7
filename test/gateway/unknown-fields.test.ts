// Nothing dropped silently: fields the schemas do not model, nested at several depths, posted to
// each endpoint (JSON, NDJSON, CSV, Avro, the trackers), are in the event's _unknown and read back
// from the real Kafka byte for byte. Bids keep them at both levels: beside `request` in the
// envelope's _unknown (bid v3), inside it in the OpenRTB objects' own; a rejected bid's dead letter
// holds them too.
import { randomUUID } from 'node:crypto'
import avro from 'avsc'
import { describe, expect, inject, it } from 'vitest'
import { writeContainer } from '../../decoders/avro-container.js'
import { normalizerFor } from '../../decoders/normalizers.js'
import { DLQ_TOPIC, EVENT_INFO, type EventType } from '../../events/catalog.js'
import { eventToJson } from '../../events/event-json.js'
import { DLQ_SCHEMA, EVENT_SCHEMAS } from '../../events/schemas.js'
import { csvCell } from '../../generator/encode.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { gatewayForBlock, post } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')
const GATEWAY_FIELDS = ['ingest_time', 'source']

/** Unknown fields at three depths, an explicit null of a modelled field, and a "__proto__" key. */
function extras(run: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    viewability: { measured: true, vendor: { name: 'moat', ids: [1, 2.5, 'x', null, { deep: [[]] }] } },
    gdpr_consent: `CO-${run}`,
    'ünïcode key': '✓ "quoted" \\ \n',
  }
  Object.defineProperty(out, '__proto__', { value: { polluted: true }, enumerable: true })
  return out
}

const EVENTS: Record<Exclude<EventType, 'bid'>, (run: string) => Record<string, unknown>> = {
  impression: (run) => ({
    event_id: `imp-ev-${run}`,
    event_time: 1_795_000_000_000,
    impression_id: `imp-${run}`,
    auction_id: `auc-${run}`,
    campaign_id: 'cmp-unknown',
    cost_micros: 1200,
    // An explicit null is kept too (null and absent are one value in Avro); it reads back after the
    // modelled fields, with the unknown ones.
    creative_id: null,
  }),
  click: (run) => ({
    event_id: `clk-ev-${run}`,
    event_time: 1_795_000_000_100,
    click_id: `clk-${run}`,
    impression_id: `imp-${run}`,
    campaign_id: 'cmp-unknown',
  }),
  conversion: (run) => ({
    event_id: `cnv-ev-${run}`,
    event_time: 1_795_000_000_200,
    conversion_id: `cnv-${run}`,
    click_id: `clk-${run}`,
    campaign_id: 'cmp-unknown',
    conversion_type: 'PURCHASE',
    value_micros: 5_000_000,
    currency: 'EUR',
  }),
}

describe.skipIf(brokers.length === 0)('unknown fields of impressions, clicks and conversions', () => {
  const gw = gatewayForBlock(brokers, { ADGATE_REDIRECT_ALLOWLIST: 'shop.example.com' })

  async function readBack(type: EventType, from: Awaited<ReturnType<typeof endOffsets>>, id: string) {
    const mine = (r: ReadRecord) => r.value.event_id === id
    const records = await readFrom(brokers, from, (rs) => rs.some(mine))
    const got = records.find(mine)
    expect(got, `${id} not read back`).toBeDefined()
    expect(got!.schemaId).toBe(EVENT_SCHEMAS[type].id)
    return got!
  }

  /** One event posted as Avro (with its writer's extra fields) and again as JSON: both 200, both read back. */
  async function postedBothWays(
    type: EventType,
    avroBody: Buffer,
    avroId: string,
    jsonBody: string,
    jsonId: string,
  ) {
    const url = `${gw.url}/v1/${EVENT_INFO[type].route}`
    const from = await endOffsets(brokers, [EVENT_INFO[type].topic])
    const viaAvro = await post(url, avroBody, { 'content-type': 'application/avro' })
    expect(viaAvro.status, JSON.stringify(viaAvro.body)).toBe(200)
    const viaJson = await post(url, jsonBody, { 'content-type': 'application/json' })
    expect(viaJson.status, JSON.stringify(viaJson.body)).toBe(200)
    return { avroBack: await readBack(type, from, avroId), jsonBack: await readBack(type, from, jsonId) }
  }

  /** The event as its sender posted it: schema fields in schema order, then the unknown ones. */
  function asPosted(type: EventType, record: ReadRecord): string {
    const json = eventToJson(EVENT_SCHEMAS[type].model, record.value)
    for (const f of GATEWAY_FIELDS) delete json[f]
    // Optional fields the sender left out read back as their defaults: not part of what was posted.
    return JSON.stringify(json)
  }

  it.each([
    ['impression', 'json'],
    ['click', 'json'],
    ['conversion', 'ndjson'],
  ] as const)(
    '%s over %s: unknown fields at several depths read back byte for byte',
    async (type, encoding) => {
      const run = randomUUID().slice(0, 8)
      const topic = EVENT_INFO[type].topic
      const known = EVENTS[type](run)
      const posted = { ...known, ...extras(run) }
      const text = JSON.stringify(posted)
      const from = await endOffsets(brokers, [topic])
      const res = await post(
        `${gw.url}/v1/${EVENT_INFO[type].route}`,
        encoding === 'json' ? `[${text}]` : `${text}\n`,
        {
          'content-type': encoding === 'json' ? 'application/json' : 'application/x-ndjson',
        },
      )
      expect(res.status, JSON.stringify(res.body)).toBe(200)
      const got = await readBack(type, from, known.event_id as string)
      // _unknown holds exactly the keys the schema does not model (and the explicit null).
      const unknownKeys = Object.keys(posted).filter(
        (k) => !EVENT_SCHEMAS[type].model.fields.some((f) => f.name === k) || posted[k] === null,
      )
      expect(Object.keys(JSON.parse(got.value._unknown as string))).toEqual(unknownKeys)
      const defaults = EVENT_SCHEMAS[type].model.fields.filter(
        (f) => f.hasDefault && !(f.name in posted) && f.role === 'input' && !GATEWAY_FIELDS.includes(f.name),
      )
      const back = JSON.parse(asPosted(type, got)) as Record<string, unknown>
      for (const f of defaults) delete back[f.name]
      expect(JSON.stringify(back)).toBe(text)
    },
  )

  it('click over CSV: unknown columns are kept as the text cells they are', async () => {
    const run = randomUUID().slice(0, 8)
    const topic = EVENT_INFO.click.topic
    const from = await endOffsets(brokers, [topic])
    const nested = JSON.stringify({ vendor: { ids: [1, { deep: true }] } })
    const csv = `event_id,event_time,click_id,impression_id,campaign_id,viewability,gdpr_consent\nclk-csv-${run},1795000000000,k-${run},i-${run},c,"${nested.replaceAll('"', '""')}",CO-${run}\n`
    const res = await post(`${gw.url}/v1/clicks`, csv, { 'content-type': 'text/csv' })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    const got = await readBack('click', from, `clk-csv-${run}`)
    expect(got.value._unknown).toBe(JSON.stringify({ viewability: nested, gdpr_consent: `CO-${run}` }))
  })

  it('click over Avro: fields only the writer schema names, nested, read back as the same click posted as JSON', async () => {
    const run = randomUUID().slice(0, 8)
    const schema = EVENT_SCHEMAS.click.json as { fields: unknown[] }
    const vendor = {
      type: 'record',
      name: 'Vendor',
      fields: [
        { name: 'name', type: 'string' },
        { name: 'ids', type: { type: 'array', items: 'double' } },
      ],
    }
    const writer = avro.Type.forSchema({
      ...schema,
      fields: [
        ...schema.fields.slice(0, 5),
        {
          name: 'viewability',
          type: {
            type: 'record',
            name: 'Viewability',
            fields: [
              { name: 'measured', type: 'boolean' },
              { name: 'vendor', type: vendor },
            ],
          },
        },
        ...schema.fields.slice(5),
        { name: 'gdpr_consent', type: 'string' },
      ],
    } as avro.Schema)
    const extra = {
      viewability: { measured: true, vendor: { name: 'moat', ids: [1, 2.5] } },
      gdpr_consent: `CO-${run}`,
    }
    const click = (id: string) => ({ ...EVENTS.click(run), event_id: id })
    const { avroBack, jsonBack } = await postedBothWays(
      'click',
      writeContainer(writer, [{ ...click(`clk-avro-${run}`), ...extra }]),
      `clk-avro-${run}`,
      JSON.stringify({ ...click(`clk-json-${run}`), ...extra }),
      `clk-json-${run}`,
    )
    expect(avroBack.value._unknown).toBe(JSON.stringify(extra))
    expect(avroBack.value._unknown).toBe(jsonBack.value._unknown)
  })

  it('pixel and click trackers: parameters the schema does not model are kept', async () => {
    const run = randomUUID().slice(0, 8)
    const topics = [EVENT_INFO.impression.topic, EVENT_INFO.click.topic]
    const from = await endOffsets(brokers, topics)
    const pixel = await fetch(
      `${gw.url}/v1/t/impression.gif?event_id=px-${run}&impression_id=i-${run}&auction_id=a-${run}&campaign_id=c&cost_micros=5&gdpr_consent=CO-${run}&cb=123`,
    )
    expect(pixel.status).toBe(200)
    const landing = 'https://shop.example.com/offer'
    const click = await fetch(
      `${gw.url}/v1/t/click?event_id=ck-${run}&click_id=k-${run}&impression_id=i-${run}&campaign_id=c&utm_source=ssp&url=${encodeURIComponent(landing)}`,
      { redirect: 'manual' },
    )
    expect(click.status).toBe(302)
    const imp = await readBack('impression', from, `px-${run}`)
    expect(imp.value._unknown).toBe(JSON.stringify({ gdpr_consent: `CO-${run}`, cb: '123' }))
    const clk = await readBack('click', from, `ck-${run}`)
    expect(clk.value._unknown).toBe(JSON.stringify({ utm_source: 'ssp' }))
    expect(clk.value.landing_url).toBe(landing)
  })

  /** A bid envelope with fields beside request (one an explicit null) and inside it, at several depths. */
  function bidPosted(run: string): Record<string, unknown> {
    return {
      event_id: `bid-ev-${run}`,
      event_time: 1_795_000_000_300,
      request: {
        id: `auc-${run}`,
        imp: [{ id: '1', banner: { w: 300, h: 250, 'x-b': [1] }, bidfloor: 0.03, 'x-imp': 'é' }],
        'x-req': { a: [1, null] },
      },
      zzz: 1,
      campaign_id: null,
      ...extras(run),
    }
  }

  /** What reaches the envelope's _unknown from `posted`: every key beside request but adgate's. */
  function envelopeUnknown(posted: Record<string, unknown>): string {
    const kept = Object.create(null) as Record<string, unknown>
    for (const [k, v] of Object.entries(posted))
      if (!['event_id', 'event_time', 'request'].includes(k))
        Object.defineProperty(kept, k, { value: v, enumerable: true, writable: true, configurable: true })
    return JSON.stringify(kept)
  }

  it.each(['json', 'ndjson'] as const)(
    'bid over %s: fields beside request and inside it read back byte for byte',
    async (encoding) => {
      const run = randomUUID().slice(0, 8)
      const posted = bidPosted(run)
      const text = JSON.stringify(posted)
      const from = await endOffsets(brokers, [EVENT_INFO.bid.topic])
      const res = await post(`${gw.url}/v1/bids`, encoding === 'json' ? `[${text}]` : `${text}\n`, {
        'content-type': encoding === 'json' ? 'application/json' : 'application/x-ndjson',
      })
      expect(res.status, JSON.stringify(res.body)).toBe(200)
      const got = await readBack('bid', from, posted.event_id as string)
      expect(got.value._unknown).toBe(envelopeUnknown(posted))
      expect((got.value.request as Record<string, unknown>)._unknown).toBe('{"x-req":{"a":[1,null]}}')
      const back = JSON.parse(asPosted('bid', got)) as Record<string, unknown>
      delete back.bid_price_micros // left out, read back as its default
      expect(JSON.stringify(back)).toBe(text)
    },
  )

  it('bid over CSV (envelope columns): unknown columns are kept as the text cells they are', async () => {
    const run = randomUUID().slice(0, 8)
    const { campaign_id: _, ...posted } = bidPosted(run) // an empty cell is absent, not null
    const keys = Object.keys(posted)
    const csv = `${keys.map(csvCell).join(',')}\n${keys.map((k) => csvCell(posted[k])).join(',')}\n`
    const from = await endOffsets(brokers, [EVENT_INFO.bid.topic])
    const res = await post(`${gw.url}/v1/bids`, csv, { 'content-type': 'text/csv' })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    const got = await readBack('bid', from, posted.event_id as string)
    const cells = Object.fromEntries(
      keys
        .filter((k) => !['event_id', 'event_time', 'request'].includes(k))
        .map((k) => [k, typeof posted[k] === 'object' ? JSON.stringify(posted[k]) : String(posted[k])]),
    )
    expect(got.value._unknown).toBe(envelopeUnknown(cells))
    expect((got.value.request as Record<string, unknown>)._unknown).toBe('{"x-req":{"a":[1,null]}}')
  })

  it('bid over Avro: fields only the writer schema names beside request read back as the same bid posted as JSON', async () => {
    const run = randomUUID().slice(0, 8)
    const schema = EVENT_SCHEMAS.bid.json as { fields: { name: string }[] }
    const rest = schema.fields.findIndex((f) => f.name === '_unknown')
    const writer = avro.Type.forSchema({
      ...schema,
      fields: [
        ...schema.fields.slice(0, rest),
        { name: 'zzz', type: 'int' },
        {
          name: 'x_trace',
          type: {
            type: 'record',
            name: 'Trace',
            fields: [{ name: 'hops', type: { type: 'array', items: 'string' } }],
          },
        },
        ...schema.fields.slice(rest),
      ],
    } as avro.Schema)
    const extra = { zzz: 1, x_trace: { hops: ['ssp', 'exchange'] } }
    const bid = (id: string) => ({
      event_id: id,
      event_time: 1_795_000_000_400,
      request: { id: `auc-${run}`, imp: [{ id: '1', 'x-imp': true }] },
    })
    // The Avro value: the bid as the gateway reads it (the canonical event), plus the writer's fields.
    const canonical = normalizerFor('bid', 'json')(bid(`bid-avro-${run}`)) as Record<string, unknown>
    const { avroBack, jsonBack } = await postedBothWays(
      'bid',
      writeContainer(writer, [{ ...canonical, ...extra }]),
      `bid-avro-${run}`,
      JSON.stringify({ ...bid(`bid-json-${run}`), ...extra }),
      `bid-json-${run}`,
    )
    expect(avroBack.value._unknown).toBe(JSON.stringify(extra))
    expect(avroBack.value._unknown).toBe(jsonBack.value._unknown)
    expect(avroBack.value.request).toEqual(jsonBack.value.request)
  })

  it("a rejected bid's dead letter holds the fields beside request byte for byte", async () => {
    const run = randomUUID().slice(0, 8)
    const posted = { ...bidPosted(run), event_time: 'yesterday' }
    const text = JSON.stringify(posted)
    const from = await endOffsets(brokers, [DLQ_TOPIC])
    const res = await post(`${gw.url}/v1/bids`, text, { 'content-type': 'application/json' })
    expect(res.status, JSON.stringify(res.body)).toBe(400)
    const mine = (r: ReadRecord) => r.headers['adgate.request_id'] === res.body.request_id
    const dead = (await readFrom(brokers, from, (rs) => rs.some(mine))).find(mine)
    expect(dead, 'dead letter not read back').toBeDefined()
    expect(dead!.schemaId).toBe(DLQ_SCHEMA.id)
    expect(dead!.value.field).toBe('event_time')
    expect((dead!.value.raw as Buffer).toString()).toBe(text)
  })
})
