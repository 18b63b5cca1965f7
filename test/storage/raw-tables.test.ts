// The raw tables read bids of every schema version a topic may hold: v1 (upcast), v2 and v3 (the
// envelope's _unknown: its column, and back in place in `event`).
import { describe, expect, it } from 'vitest'
import type { RawEvent } from '../../correlator/rows.js'
import { normalizerFor } from '../../decoders/normalizers.js'
import { SUBJECTS } from '../../events/schemas.js'
import { encodeWire } from '../../events/wire.js'
import { RAW_TABLES, rawRows } from '../../storage/raw-tables.js'

const [V1, V2, V3] = SUBJECTS.get('adgate.bids-value')!
const RAW_BIDS = RAW_TABLES.find((t) => t.name === 'raw_bids')!
const RAW_BID_IMPS = RAW_TABLES.find((t) => t.name === 'raw_bid_imps')!

const posted = {
  event_id: 'ev-raw',
  event_time: 1_760_000_000_000,
  campaign_id: 'cmp-1',
  request: { id: 'auc-raw', imp: [{ id: '1', bidfloor: 0.03 }], 'x-req': 1 },
  x_beside: { a: [1, null] },
}
const v3 = normalizerFor('bid', 'json')(posted) as Record<string, unknown>
const { _unknown: _, ...v2 } = v3
const v1 = V1!.type.clone(
  {
    event_id: 'ev-raw',
    event_time: 1_760_000_000_000,
    id: 'auc-raw',
    campaign_id: 'cmp-1',
    bid_price_micros: 0,
    imp: [{ id: '1', bidfloor_micros: 30_000 }],
  },
  { wrapUnions: false },
)

function row(value: Buffer): Record<string, unknown> {
  const ref: RawEvent = { type: 'bid', partition: 0, offset: '7', time: 0, value, flags: null }
  const rows = rawRows([ref])
  const bids = rows.get(RAW_BIDS)!
  expect(bids).toHaveLength(1)
  const out = Object.fromEntries(RAW_BIDS.columns.map((c, i) => [c.name, bids[0]![i]]))
  const imps = rows.get(RAW_BID_IMPS)!
  out.bidfloor = imps[0]![RAW_BID_IMPS.columns.findIndex((c) => c.name === 'bidfloor')]
  return out
}

describe('raw tables: bids of every schema version', () => {
  it('v3: the fields posted beside request in the _unknown column, and back in place in event', () => {
    const r = row(encodeWire(V3!, v3))
    expect(r).toMatchObject({
      event_id: 'ev-raw',
      auction_id: 'auc-raw',
      campaign_id: 'cmp-1',
      _unknown: '{"x_beside":{"a":[1,null]}}',
      request_unknown: '{"x-req":1}',
      bidfloor: '0.03',
    })
    expect(JSON.parse(r.event as string)).toMatchObject({
      request: posted.request,
      x_beside: posted.x_beside,
    })
  })

  it.each([
    ['v2', () => encodeWire(V2!, v2)],
    ['v1', () => encodeWire(V1!, v1)],
  ])('%s: the same row, with nothing beside the request (_unknown null)', (_, encode) => {
    const r = row(encode())
    expect(r).toMatchObject({
      event_id: 'ev-raw',
      auction_id: 'auc-raw',
      campaign_id: 'cmp-1',
      _unknown: null,
      bidfloor: '0.03',
    })
    expect(JSON.parse(r.event as string).x_beside).toBeUndefined()
  })
})
