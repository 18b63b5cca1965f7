// Nothing dropped silently on impressions, clicks and conversions: fields the schemas do not model,
// nested at several depths, posted to each endpoint (JSON, NDJSON, CSV, Avro, the trackers), are in
// the event's _unknown and read back from the real Kafka byte for byte.
import { randomUUID } from 'node:crypto'
import avro from 'avsc'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { writeContainer } from '../../decoders/avro-container.js'
import { EVENT_INFO, type EventType } from '../../events/catalog.js'
import { eventToJson } from '../../events/event-json.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { post, type RunningGateway, startGateway } from '../support/gateway.js'

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
  let gw: RunningGateway
  beforeAll(async () => {
    gw = await startGateway(brokers, { ADGATE_REDIRECT_ALLOWLIST: 'shop.example.com' })
  })
  afterAll(async () => {
    expect(await gw.stop()).toBe(0)
  })

  async function readBack(type: EventType, from: Awaited<ReturnType<typeof endOffsets>>, id: string) {
    const mine = (r: ReadRecord) => r.value.event_id === id
    const records = await readFrom(brokers, from, (rs) => rs.some(mine))
    const got = records.find(mine)
    expect(got, `${id} not read back`).toBeDefined()
    expect(got!.schemaId).toBe(EVENT_SCHEMAS[type].id)
    return got!
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
    const from = await endOffsets(brokers, [EVENT_INFO.click.topic])
    const viaAvro = await post(
      `${gw.url}/v1/clicks`,
      writeContainer(writer, [{ ...click(`clk-avro-${run}`), ...extra }]),
      {
        'content-type': 'application/avro',
      },
    )
    expect(viaAvro.status, JSON.stringify(viaAvro.body)).toBe(200)
    const viaJson = await post(
      `${gw.url}/v1/clicks`,
      JSON.stringify({ ...click(`clk-json-${run}`), ...extra }),
      {
        'content-type': 'application/json',
      },
    )
    expect(viaJson.status, JSON.stringify(viaJson.body)).toBe(200)
    const avroBack = await readBack('click', from, `clk-avro-${run}`)
    const jsonBack = await readBack('click', from, `clk-json-${run}`)
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
})
