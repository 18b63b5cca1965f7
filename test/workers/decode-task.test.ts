// A worker task end to end, in-process: bodies in, Kafka record batches out.
import { describe, expect, it } from 'vitest'
import type { Encoding } from '../../decoders/result.js'
import { EVENT_INFO } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { decodeWire } from '../../events/wire.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { partitionFor } from '../../kafka/protocol/murmur2.js'
import { decodeRecordBatch } from '../../kafka/protocol/record-batch.js'
import { runOneBody } from '../support/decode-task.js'

const PARTITIONS = {
  'adgate.bids': 4,
  'adgate.impressions': 4,
  'adgate.clicks': 4,
  'adgate.conversions': 4,
  'adgate.dlq': 4,
}

function task(body: Buffer, encoding: Encoding, type: 'bid' | 'impression') {
  const facts = { type, encoding, source: 'ssp-ü', ingestTime: 1_795_000_000_123 }
  return runOneBody(body, facts, { maxBytes: 1 << 24, maxEvents: 10_000, partitions: PARTITIONS })
}

describe('decode task', () => {
  for (const [type, encoding] of [
    ['bid', 'avro'],
    ['bid', 'json'],
    ['impression', 'avro'],
    ['impression', 'csv'],
  ] as const) {
    it(`${type} as ${encoding}: every event lands once, stamped, on its key's partition`, () => {
      const events = generateEvents(type, 200, 9)
      const result = task(encodeEvents(type, events, encoding), encoding, type)
      expect(result.outcomes[0]).toMatchObject({ error: null, events: 200, rejected: 0, rejects: null })
      const out = Buffer.from(result.buffer)
      const seen = new Map<string, Record<string, unknown>>()
      for (const b of result.batches) {
        expect(b.topic).toBe(EVENT_INFO[type].topic)
        for (const r of decodeRecordBatch(out.subarray(b.offset, b.offset + b.length)).records) {
          expect(partitionFor(r.key!, 4)).toBe(b.partition)
          const { schema, value } = decodeWire(r.value)
          expect(schema.id).toBe(EVENT_SCHEMAS[type].id)
          seen.set((value as { event_id: string }).event_id, value as Record<string, unknown>)
        }
      }
      expect(seen.size).toBe(200)
      for (const e of events) {
        expect(seen.get(e.event_id as string)).toEqual({
          ...e,
          ingest_time: 1_795_000_000_123,
          source: 'ssp-ü',
        })
      }
    })
  }
})
