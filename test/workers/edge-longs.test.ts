// Issue 15, defect 1: a whole number at ±(2^53 − 1) passed validation, then avsc refused to encode
// it, the worker task threw and every request in it got 503 WORKER_FAILED (retryable: a poison
// request retried forever). Now it is that event's rejection (207/400) on every encoding and path.
import { describe, expect, it } from 'vitest'
import { MAX_LONG } from '../../decoders/normalize.js'
import type { Encoding } from '../../decoders/result.js'
import { transcodeJsonJs } from '../../decoders/transcode.js'
import { runOneBody } from '../support/decode-task.js'
import { outcomeOf } from '../support/rejects.js'

const PARTITIONS = { 'adgate.bids': 1, 'adgate.impressions': 1, 'adgate.dlq': 1 }

function run(body: string, encoding: Encoding, type: 'bid' | 'impression') {
  const facts = { type, encoding, requestId: 'r' }
  return outcomeOf(runOneBody(body, facts, { maxBytes: 1 << 20, maxEvents: 100, partitions: PARTITIONS }), 0)
}

// The bid's long: bid_price_micros in adgate's envelope (schemas/bid.v3.avsc).
const bid = (price: number, id: string) =>
  `{"event_id":"${id}","event_time":1760000000000,"bid_price_micros":${price},"request":{"id":"a${id}","imp":[{"id":"1"}]}}`

describe('issue 15 defect 1: ±(2^53 − 1) is a per-event rejection, never WORKER_FAILED', () => {
  for (const n of [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
    it(`bid JSON array with bid_price_micros ${n}: one rejected, the other accepted`, () => {
      const outcome = run(`[${bid(n, 'b1')},${bid(1000, 'b2')}]`, 'json', 'bid')
      expect(outcome.error).toBeNull()
      expect(outcome.events).toBe(1)
      expect(outcome.rejects).toHaveLength(1)
      expect(outcome.rejects[0]!.index).toBe(0)
    })

    it(`bid NDJSON with bid_price_micros ${n}: one rejected, the other accepted`, () => {
      const outcome = run(`${bid(1000, 'b1')}\n${bid(n, 'b2')}\n`, 'ndjson', 'bid')
      expect(outcome).toMatchObject({ error: null, events: 1 })
      expect(outcome.rejects.map((r) => r.index)).toEqual([1])
    })
  }

  it('the JS transcoder (ADGATE_NATIVE=0) rejects the same values', () => {
    const body = Buffer.from(`[${bid(Number.MAX_SAFE_INTEGER, 'b1')},${bid(MAX_LONG, 'b2')}]`)
    const options = {
      type: 'bid' as const,
      encoding: 'json' as const,
      contentEncoding: 'identity' as const,
      maxBytes: 1 << 20,
      maxEvents: 100,
      ingestTime: 1,
      source: 's',
    }
    const r = transcodeJsonJs(body, false, options)
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect(r.count).toBe(1)
    expect(r.rejects.map((x) => x.index)).toEqual([0])
  })

  it('CSV: a long cell at 2^53 − 1 is a per-event rejection; at the bound it is accepted', () => {
    const header = 'event_id,event_time,impression_id,auction_id,campaign_id,creative_id,cost_micros'
    const row = (id: string, cost: number) => `${id},1760000000000,i${id},a${id},c1,cr1,${cost}`
    const outcome = run(
      `${header}\n${row('e1', Number.MAX_SAFE_INTEGER)}\n${row('e2', MAX_LONG)}\n`,
      'csv',
      'impression',
    )
    expect(outcome.error).toBeNull()
    expect(outcome.rejects.map((r) => r.index)).toEqual([0])
    expect(outcome.events).toBe(1)
  })
})
