// Every problem of an invalid event reaches the sender and the dead-letter topic, with its path:
// a real gateway and the real broker, over a POST (207 and 400), the WebSocket and the pixel.
import { randomUUID } from 'node:crypto'
import { describe, expect, inject, it } from 'vitest'
import WebSocket from 'ws'
import { DLQ_TOPIC } from '../../events/catalog.js'
import { DLQ_SCHEMA } from '../../events/schemas.js'
import { generateEvents } from '../../generator/funnel.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { gatewayForBlock, post } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')

// Three problems at three depths of one OpenRTB bid request.
const BAD_BID = {
  id: 'auction-every-error',
  imp: [
    {
      id: '1',
      banner: {
        format: [
          { w: 300, h: 250 },
          { w: 'wide', h: -1 },
        ],
      },
    },
    { id: 2 },
  ],
}
const BAD_BID_ERRORS = [
  { field: 'imp[0].banner.format[1].w', reason: 'must be a 32-bit integer, got string "wide"' },
  { field: 'imp[0].banner.format[1].h', reason: 'must be ≥ 0, got -1' },
  { field: 'imp[1].id', reason: 'must be a string, got number 2' },
]

describe.skipIf(brokers.length === 0)('every error of an event, end to end', () => {
  const run = randomUUID().slice(0, 8)

  const gw = gatewayForBlock(brokers)

  const deadLetters = async (from: Awaited<ReturnType<typeof endOffsets>>, requestId: string, n: number) => {
    const mine = (r: ReadRecord) => r.headers['adgate.request_id'] === requestId
    const records = (await readFrom(brokers, from, (rs) => rs.filter(mine).length >= n)).filter(mine)
    return records.sort((a, b) => (a.value.index as number) - (b.value.index as number))
  }

  it('POST: the 207 lists every problem, and so does the dead letter', async () => {
    const from = await endOffsets(brokers, [DLQ_TOPIC])
    const good = { ...BAD_BID, id: `auction-${run}`, imp: [{ id: '1', bidfloor: 0.03 }] }
    const res = await post(`${gw.url}/v1/bids`, JSON.stringify([good, BAD_BID]), {
      'content-type': 'application/json',
    })
    expect(res.status).toBe(207)
    expect(res.body.errors).toEqual([
      {
        index: 1,
        field: BAD_BID_ERRORS[0]!.field,
        reason: BAD_BID_ERRORS[0]!.reason,
        errors: BAD_BID_ERRORS,
      },
    ])
    const [dead] = await deadLetters(from, res.body.request_id as string, 1)
    expect(dead!.schemaId).toBe(DLQ_SCHEMA.id)
    expect(dead!.value).toMatchObject({ index: 1, field: BAD_BID_ERRORS[0]!.field, errors: BAD_BID_ERRORS })
    expect(JSON.parse((dead!.value.raw as Buffer).toString())).toEqual(BAD_BID)
  })

  it('POST: the 400 of a body of only invalid events lists every problem of each', async () => {
    const [impression] = generateEvents('impression', 1, 11)
    const from = await endOffsets(brokers, [DLQ_TOPIC])
    const csv = `event_id,event_time,impression_id,auction_id,campaign_id,cost_micros,country\n,${impression!.event_time},i-${run},a-${run},c-${run},-5,Germany\n`
    const res = await post(`${gw.url}/v1/impressions`, csv, { 'content-type': 'text/csv' })
    expect(res.status).toBe(400)
    const expected = [
      { field: 'event_id', reason: 'is required' }, // an empty CSV cell is an absent field
      { field: 'cost_micros', reason: 'must be ≥ 0, got -5' },
      { field: 'country', reason: 'must be at most 2 characters, got 7' },
    ]
    expect(res.body).toMatchObject({ error: { code: 'ALL_EVENTS_INVALID' }, rejected: 1 })
    expect((res.body.errors as { errors: unknown }[])[0]!.errors).toEqual(expected)
    const [dead] = await deadLetters(from, res.body.request_id as string, 1)
    expect(dead!.value.errors).toEqual(expected)
  })

  it('WebSocket: the ack of a batch lists every problem', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/v1/stream`)
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    const ack = new Promise<Record<string, unknown>>((resolve) =>
      ws.once('message', (data) => resolve(JSON.parse(data.toString()))),
    )
    ws.send(
      Buffer.from(
        `${JSON.stringify({ seq: 1, type: 'bid', encoding: 'ndjson' })}\n${JSON.stringify(BAD_BID)}\n`,
      ),
    )
    expect(await ack).toMatchObject({
      seq: 1,
      status: 400,
      errors: [{ index: 0, field: BAD_BID_ERRORS[0]!.field, errors: BAD_BID_ERRORS }],
    })
    ws.close()
  })

  it('pixel: an invalid hit answers 400 with every problem of its parameters', async () => {
    const res = await fetch(
      `${gw.url}/v1/t/impression.gif?impression_id=i-${run}&cost_micros=-5&country=Germany`,
    )
    expect(res.status).toBe(400)
    const body = (await res.json()) as { errors: { errors: unknown }[] }
    expect(body.errors[0]!.errors).toEqual([
      { field: 'auction_id', reason: 'is required' },
      { field: 'campaign_id', reason: 'is required' },
      { field: 'cost_micros', reason: 'must be ≥ 0, got -5' },
      { field: 'country', reason: 'must be at most 2 characters, got 7' },
    ])
  })
})
