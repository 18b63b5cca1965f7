// OpenRTB 2.6 bid requests exactly as senders have them, through the real gateway into the real
// broker: the IAB examples each accepted unchanged with 200 and read back with every field, and a
// request with unknown fields at several depths read back byte for byte.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { describe, expect, inject, it } from 'vitest'
import { EVENT_INFO } from '../../events/catalog.js'
import { derivedEventId } from '../../events/event-id.js'
import { eventToJson } from '../../events/event-json.js'
import { bodyField, type RecordNode, recordOf } from '../../events/schema-model.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { gatewayForBlock, post } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')
const TOPIC = EVENT_INFO.bid.topic
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'openrtb')
const EXAMPLES = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f, readFileSync(join(FIXTURES, f), 'utf8')] as const)
const REQUEST_MODEL = recordOf(bodyField(EVENT_SCHEMAS.bid.model)!.node) as RecordNode

const requestOf = (r: ReadRecord) => eventToJson(REQUEST_MODEL, r.value.request as object)

describe.skipIf(brokers.length === 0)('OpenRTB bid requests → gateway → Kafka', () => {
  const gw = gatewayForBlock(brokers)

  async function send(text: string): Promise<ReadRecord> {
    const id = (JSON.parse(text) as { id: string }).id
    const from = await endOffsets(brokers, [TOPIC])
    const res = await post(`${gw.url}/v1/bids`, text, { 'content-type': 'application/json' })
    expect(res.status, JSON.stringify(res.body)).toBe(200)
    expect(res.body).toMatchObject({ accepted: 1, rejected: 0 })
    const wanted = (r: ReadRecord) => r.key === id && isDeepStrictEqual(requestOf(r), JSON.parse(text))
    const records = await readFrom(brokers, new Map([[TOPIC, from.get(TOPIC)!]]), (rs) => rs.some(wanted))
    const got = records.find(wanted)
    expect(got, `${id} not read back`).toBeDefined()
    return got!
  }

  it.each(EXAMPLES)('%s: 200, and read back from Kafka with every field', async (_, text) => {
    const got = await send(text)
    expect(got.schemaId).toBe(EVENT_SCHEMAS.bid.id)
    expect(requestOf(got)).toEqual(JSON.parse(text))
    expect(got.value).toMatchObject({
      event_id: derivedEventId('anonymous', got.key!),
      source: 'anonymous',
      campaign_id: null,
    })
    expect(got.value.event_time).toBe(got.value.ingest_time)
  })

  it('unknown fields at several depths (ext included) read back byte for byte', async () => {
    // Known fields in schema order, then the unknown ones: the JSON view rebuilds exactly this text.
    const text = `{"id":"unk-${Date.now()}","imp":[{"id":"1","banner":{"format":[{"w":300,"h":250,"x-f":[1,2]}],"x-b":{"k":"v"}},"bidfloor":0.03,"ext":{"gpid":"/x","nested":{"deep":[true,null]}},"x-imp":"é"}],"site":{"publisher":{"id":"p","x-pub":1.5}},"device":{"geo":{"country":"USA","x-geo":null},"ifa":"a"},"regs":{"gdpr":1,"gpp":"DBAA","gpp_sid":[2,6],"x-regs":{}},"x-top":[{"a":"b"}]}`
    const got = await send(text)
    expect(JSON.stringify(requestOf(got))).toBe(text)
    const request = got.value.request as {
      _unknown: string
      imp: { bidfloor_micros: number; _unknown: string }[]
    }
    expect(request._unknown).toBe('{"x-top":[{"a":"b"}]}')
    expect(request.imp[0]).toMatchObject({ bidfloor_micros: 30_000, _unknown: '{"x-imp":"é"}' })
  })
})
