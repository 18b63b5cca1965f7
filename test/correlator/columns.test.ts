// Snapshot columns: a map of flat records survives the trip through columns and v8.serialize
// exactly (nulls, flags, nested arrays), and a v1 snapshot (states as they were) still loads.
import { serialize } from 'node:v8'
import { describe, expect, it } from 'vitest'
import { newAuctionState, OPEN_BID_COLUMNS, type OpenBid } from '../../correlator/auction-join.js'
import { newClickJoinState } from '../../correlator/click-join.js'
import { fromColumns, toColumns } from '../../correlator/columns.js'
import { newConversionJoinState } from '../../correlator/conversion-join.js'
import { Pipeline } from '../../correlator/pipeline.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'

const bids = new Map<string, OpenBid>([
  ['a1', { event_id: 'e1', time: 1_764_979_200_123, campaign_id: 'c1', price: 1_250_000, won: true }],
  ['a2', { event_id: 'e2', time: 1_764_979_201_000, campaign_id: null, price: 0, won: false }],
])

describe('snapshot columns', () => {
  it('give back the same map, in the same order', () => {
    const back = fromColumns(toColumns(bids, OPEN_BID_COLUMNS), OPEN_BID_COLUMNS)
    expect([...back]).toEqual([...bids])
  })

  it('a partition snapshot round-trips, and a v1 snapshot still loads', () => {
    const p = new Pipeline(DEFAULT_RULES, 1, true)
    const auction = { ...newAuctionState(), bids }
    const click = newClickJoinState()
    click.impressions.set('i1', { time: 5, clicks: [] })
    const v1 = serialize({ v: 1, auction, click, conversion: newConversionJoinState() })
    p.init(0, v1, 0)
    expect([...p.joins.get(0)!.auction.state.bids]).toEqual([...bids])
    const v2 = p.snapshot(0)
    const q = new Pipeline(DEFAULT_RULES, 1, true)
    q.init(0, v2, 0)
    expect([...q.joins.get(0)!.auction.state.bids]).toEqual([...bids])
    expect([...q.joins.get(0)!.click.state.impressions]).toEqual([['i1', { time: 5, clicks: [] }]])
    expect(q.snapshot(0).equals(v2)).toBe(true)
  })
})
