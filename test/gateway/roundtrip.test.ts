// Every endpoint × every encoding: what is posted is what a Kafka consumer reads back.
import { describe, expect, inject, it } from 'vitest'
import type { Encoding } from '../../decoders/result.js'
import { EVENT_INFO, EVENT_TYPES, eventKey } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { CONTENT_TYPE, encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { endOffsets, readFrom } from '../support/consume.js'
import { gatewayForBlock, post } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')
const ENCODINGS: Encoding[] = ['json', 'ndjson', 'csv', 'avro']

describe.skipIf(brokers.length === 0)('gateway → Kafka round trip', () => {
  const gw = gatewayForBlock(brokers)

  let seed = Date.now() % 1_000_000
  for (const type of EVENT_TYPES) {
    for (const encoding of ENCODINGS) {
      it(`${type} as ${encoding}: every event reaches ${EVENT_INFO[type].topic} intact, keyed for its join`, async () => {
        const topic = EVENT_INFO[type].topic
        const events = generateEvents(type, 40, seed++)
        const from = await endOffsets(brokers, [topic])
        const before = Date.now()
        const res = await post(
          `${gw.url}/v1/${EVENT_INFO[type].route}`,
          encodeEvents(type, events, encoding),
          {
            'content-type': CONTENT_TYPE[encoding],
            'x-request-id': `rt-${type}-${encoding}`,
          },
        )
        const after = Date.now()
        expect(res.status, JSON.stringify(res.body)).toBe(200)
        expect(res.body).toMatchObject({ accepted: 40, rejected: 0, request_id: `rt-${type}-${encoding}` })

        const ids = new Set(events.map((e) => e.event_id))
        const records = (
          await readFrom(
            brokers,
            new Map([[topic, from.get(topic)!]]),
            (rs) => rs.filter((r) => ids.has(r.value.event_id)).length >= 40,
          )
        ).filter((r) => ids.has(r.value.event_id))
        expect(records).toHaveLength(40)
        const byId = new Map(records.map((r) => [r.value.event_id, r]))
        for (const sent of events) {
          const got = byId.get(sent.event_id)!
          expect(got.schemaId).toBe(EVENT_SCHEMAS[type].id)
          const ingest = got.value.ingest_time as number
          expect(ingest).toBeGreaterThanOrEqual(before - 1)
          expect(ingest).toBeLessThanOrEqual(after + 1)
          expect(got.value).toEqual({ ...sent, ingest_time: ingest, source: 'anonymous' })
          expect(got.key).toBe(eventKey(type, sent))
          expect(got.headers).toMatchObject({
            'adgate.request_id': `rt-${type}-${encoding}`,
            'adgate.encoding': encoding,
            'adgate.source': 'anonymous',
          })
        }
      })
    }
  }
})
