// The correlator's join fields from bids of every schema version a topic may hold (v1 flat, v2 and
// v3 with the request nested; v3's envelope _unknown, after the request, is never read).
import { describe, expect, it } from 'vitest'
import { decodeForJoin } from '../../correlator/decode.js'
import { normalizerFor } from '../../decoders/normalizers.js'
import { SUBJECTS } from '../../events/schemas.js'
import { encodeWire } from '../../events/wire.js'

const [V1, V2, V3] = SUBJECTS.get('adgate.bids-value')!
const envelope = {
  event_id: 'ev-j',
  event_time: 1_760_000_000_000,
  campaign_id: 'cmp-j',
  bid_price_micros: 7,
}
const v3 = normalizerFor(
  'bid',
  'json',
)({
  ...envelope,
  request: { id: 'auc-j', imp: [{ id: '1' }] },
  beside: 'kept',
}) as Record<string, unknown>
const { _unknown: _, ...v2 } = v3
const v1 = V1!.type.clone(
  { ...envelope, id: 'auc-j', imp: [{ id: '1', bidfloor_micros: 0 }] },
  { wrapUnions: false },
)

describe('decodeForJoin: bids', () => {
  it.each([
    ['v1', () => encodeWire(V1!, v1)],
    ['v2', () => encodeWire(V2!, v2)],
    ['v3', () => encodeWire(V3!, v3)],
  ])('%s: the auction id and the envelope the joins read', (_, encode) => {
    expect(v3._unknown).toBe('{"beside":"kept"}')
    expect(decodeForJoin('bid', encode())).toMatchObject({ ...envelope, id: 'auc-j' })
  })
})
