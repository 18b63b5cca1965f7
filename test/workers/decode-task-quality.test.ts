// Data-quality rules inside a worker task: rule rejections join the schema rejections with their
// index in the body, dead-letter with the rule's name, and flagged records carry a header.
import { afterEach, describe, expect, it } from 'vitest'
import type { Encoding } from '../../decoders/result.js'
import { decodeWire } from '../../events/wire.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { decodeRecordBatch, QUALITY_FLAGS_HEADER } from '../../kafka/protocol/record-batch.js'
import { useRules } from '../../quality/rules-channel.js'
import { runOneBody } from '../support/decode-task.js'
import { outcomeOf } from '../support/rejects.js'
import { FLAG_NOT_DE, useTestRules } from '../support/rules.js'

const PARTITIONS = {
  'adgate.bids': 2,
  'adgate.impressions': 2,
  'adgate.clicks': 2,
  'adgate.conversions': 2,
  'adgate.dlq': 1,
}
const INGEST = Date.UTC(2026, 10, 1, 12)

function task(body: Buffer, encoding: Encoding) {
  const facts = { type: 'impression', encoding, source: 'ssp-a', ingestTime: INGEST } as const
  const result = runOneBody(body, facts, { maxBytes: 1 << 24, maxEvents: 10_000, partitions: PARTITIONS })
  const out = Buffer.from(result.buffer)
  const records = result.batches.flatMap((b) =>
    decodeRecordBatch(out.subarray(b.offset, b.offset + b.length), QUALITY_FLAGS_HEADER).records.map((r) => ({
      topic: b.topic,
      flags: r.header,
      value: decodeWire(r.value).value as Record<string, unknown>,
    })),
  )
  return { outcome: outcomeOf(result, 0), records }
}

afterEach(() => useRules(null))

describe('decode task with quality rules', () => {
  for (const encoding of ['json', 'ndjson', 'csv', 'avro'] as const) {
    it(`${encoding}: rejects by rule with the body index, flags the rest, passes the clean ones`, () => {
      useTestRules([
        {
          name: 'imp.cost',
          type: 'impression',
          kind: 'range',
          field: 'cost_micros',
          max: 1_000_000,
          severity: 'reject',
        },
        FLAG_NOT_DE,
      ])
      const events: Record<string, unknown>[] = generateEvents('impression', 8, 4).map((e) => ({
        ...e,
        cost_micros: 500,
        country: 'DE',
      }))
      events[1]!.event_id = '' // schema rejection (index 1)
      events[2]!.cost_micros = 2_000_000 // rule rejection (index 2)
      events[5]!.cost_micros = 3_000_000 // rule rejection (index 5)
      events[6]!.country = 'FR' // flagged
      const { outcome, records } = task(encodeEvents('impression', events, encoding), encoding)
      expect(outcome.events).toBe(5)
      expect(outcome.flagged).toBe(1)
      expect(outcome.ruleRejects).toBe(2)
      expect(outcome.rejects.map((r) => [r.index, r.field])).toEqual([
        [1, 'event_id'],
        [2, 'cost_micros'],
        [5, 'cost_micros'],
      ])
      expect(outcome.rejects[1]!.reason).toBe('rule imp.cost: cost_micros must be ≤ 1000000, got 2000000')
      const accepted = records.filter((r) => r.topic === 'adgate.impressions')
      expect(accepted.map((r) => r.value.event_id).sort()).toEqual(
        [0, 3, 4, 6, 7].map((i) => events[i]!.event_id).sort(),
      )
      for (const r of accepted)
        expect(r.flags, String(r.value.event_id)).toBe(
          r.value.event_id === events[6]!.event_id ? 'imp.country' : null,
        )
      const dead = records.filter((r) => r.topic === 'adgate.dlq').map((r) => r.value)
      expect(dead.map((d) => d.index)).toEqual([1, 2, 5])
      expect(dead[2]!.reason).toBe('rule imp.cost: cost_micros must be ≤ 1000000, got 3000000')
      const raw = (dead[1]!.raw as Buffer).toString()
      if (encoding !== 'avro') expect(JSON.parse(raw).event_id).toBe(events[2]!.event_id)
    })
  }

  it('without rules nothing is checked and no record carries flags', () => {
    const events = generateEvents('impression', 5, 4).map((e) => ({ ...e, country: 'XX' }))
    const { outcome, records } = task(encodeEvents('impression', events, 'json'), 'json')
    expect(outcome).toMatchObject({ events: 5, flagged: 0, ruleRejects: 0, rejects: [] })
    expect(records.every((r) => r.flags === null)).toBe(true)
  })
})
