import { type ClockState, expiryWatermark, newClock, watermark } from './clock.js'
import type { ColumnSpec } from './columns.js'
import type { BidEvent, ForwardedImpression, ImpressionEvent, RecordRef } from './events.js'
import { addWaiting, type ExpiryState, expireUpTo, expireWaiting, newExpiry, schedule } from './expiry.js'
import { forgetBelow, type IdSetState, newIdSet } from './id-set.js'
import { admit } from './late.js'
import type { BatchOutput } from './output.js'
import {
  F_BIDS,
  F_IMPRESSIONS,
  F_QUALITY_EVENTS,
  F_QUALITY_FLAGGED,
  F_SPEND,
  F_WINS,
  type ImpressionRow,
} from './rows.js'
import type { JoinRules } from './rules.js'

/**
 * Stage 1, one partition of adgate.bids + adgate.impressions (both keyed by auction id, so a bid
 * and its impressions meet here). Joins each impression to its bid, counts bids, wins,
 * impressions and spend, and forwards each impression to the click join keyed by impression id.
 *
 * State: bids waiting for impressions until no impression inside the window can still come (the
 * impressions watermark passed bid.time + window), and impressions waiting for a bid until the
 * bids watermark passed their own time. An impression is written at once and restated when its
 * bid arrives, so nothing waits on a quiet partition to be emitted.
 */
export interface AuctionState {
  bidsClock: ClockState
  impsClock: ClockState
  bidIds: IdSetState
  impIds: IdSetState
  /** auction id → the bid, until impressionsWatermark > time + window. */
  bids: Map<string, OpenBid>
  bidExpiry: ExpiryState
  /** auction id → impressions that arrived before their bid, until bidsWatermark > their time. */
  waiting: Map<string, ImpressionRow[]>
  waitingExpiry: ExpiryState
}

/** A bid waiting for its impressions. */
export interface OpenBid {
  event_id: string
  time: number
  campaign_id: string | null
  price: number
  won: boolean
}

/** How `bids` is stored in a snapshot (columns.ts). */
export const OPEN_BID_COLUMNS: ColumnSpec<OpenBid> = {
  event_id: 'value',
  time: 'number',
  campaign_id: 'value',
  price: 'number',
  won: 'boolean',
}

export function newAuctionState(): AuctionState {
  return {
    bidsClock: newClock(),
    impsClock: newClock(),
    bidIds: newIdSet(),
    impIds: newIdSet(),
    bids: new Map(),
    bidExpiry: newExpiry(),
    waiting: new Map(),
    waitingExpiry: newExpiry(),
  }
}

export class AuctionJoin {
  constructor(
    readonly partition: number,
    readonly rules: JoinRules,
    readonly state: AuctionState,
    private readonly forward: (imp: ForwardedImpression, out: BatchOutput) => void,
  ) {}

  onBid(e: BidEvent, ref: RecordRef, out: BatchOutput, wallNow: number): void {
    const s = this.state
    const rules = this.rules
    if (!admit(out, ref, 'bid', e, s.bidsClock, s.bidIds, rules.graceMs, wallNow)) return
    if (e.campaign_id !== null) {
      out.count(1, this.partition, e.campaign_id, e.event_time, F_BIDS, 1)
      out.count(1, this.partition, e.campaign_id, e.event_time, F_QUALITY_EVENTS, 1)
      if (e.quality_flags) out.count(1, this.partition, e.campaign_id, e.event_time, F_QUALITY_FLAGGED, 1)
    }
    const bid: OpenBid = {
      event_id: e.event_id,
      time: e.event_time,
      campaign_id: e.campaign_id,
      price: e.bid_price_micros,
      won: false,
    }
    s.bids.set(e.id, bid)
    schedule(s.bidExpiry, e.id, e.event_time + rules.impressionWindowMs)
    const waiting = s.waiting.get(e.id)
    if (waiting !== undefined) {
      s.waiting.delete(e.id)
      for (const row of waiting) {
        const d = row.impression_time - bid.time
        if (d < 0 || d > rules.impressionWindowMs) {
          out.joined('bid_impression', 'outside_window')
          continue
        }
        out.joined('bid_impression', 'matched')
        const joined = { ...row, bid_event_id: bid.event_id, bid_time: bid.time, bid_price_micros: bid.price }
        out.impression(joined, true)
        this.win(bid, out)
      }
    }
  }

  onImpression(e: ImpressionEvent, ref: RecordRef, out: BatchOutput, wallNow: number): void {
    const s = this.state
    const rules = this.rules
    if (!admit(out, ref, 'impression', e, s.impsClock, s.impIds, rules.graceMs, wallNow)) return
    const row: ImpressionRow = {
      impression_id: e.impression_id,
      event_id: e.event_id,
      auction_id: e.auction_id,
      campaign_id: e.campaign_id,
      creative_id: e.creative_id ?? null,
      publisher_id: e.publisher_id ?? null,
      site_domain: e.site_domain ?? null,
      device_type: e.device_type ?? null,
      country: e.country ?? null,
      impression_time: e.event_time,
      cost_micros: e.cost_micros,
      bid_event_id: null,
      bid_time: null,
      bid_price_micros: null,
      quality_flags: e.quality_flags ?? null,
    }
    const bid = s.bids.get(e.auction_id)
    if (bid !== undefined) {
      const d = e.event_time - bid.time
      if (d >= 0 && d <= rules.impressionWindowMs) {
        row.bid_event_id = bid.event_id
        row.bid_time = bid.time
        row.bid_price_micros = bid.price
        this.win(bid, out)
        out.joined('bid_impression', 'matched')
      } else out.joined('bid_impression', 'outside_window')
    } else {
      addWaiting(s.waitingExpiry, s.waiting, e.auction_id, row, e.event_time)
    }
    out.impression(row)
    out.count(1, this.partition, e.campaign_id, e.event_time, F_IMPRESSIONS, 1)
    out.count(1, this.partition, e.campaign_id, e.event_time, F_SPEND, e.cost_micros)
    out.count(1, this.partition, e.campaign_id, e.event_time, F_QUALITY_EVENTS, 1)
    if (e.quality_flags) out.count(1, this.partition, e.campaign_id, e.event_time, F_QUALITY_FLAGGED, 1)
    this.forward({ impression_id: e.impression_id, time: e.event_time, campaign_id: e.campaign_id }, out)
  }

  private win(bid: { time: number; campaign_id: string | null; won: boolean }, out: BatchOutput): void {
    if (bid.won) return
    bid.won = true
    if (bid.campaign_id !== null) out.count(1, this.partition, bid.campaign_id, bid.time, F_WINS, 1)
  }

  /** Drops state no future event can join; call after each batch. */
  expire(out: BatchOutput): void {
    const s = this.state
    const g = this.rules.graceMs
    const impsBound = expiryWatermark(s.impsClock, g)
    const w = this.rules.impressionWindowMs
    expireUpTo(s.bidExpiry, impsBound, (id) => {
      const bid = s.bids.get(id)
      if (bid !== undefined && bid.time + w < impsBound) s.bids.delete(id)
    })
    const bidsBound = expiryWatermark(s.bidsClock, g)
    const expired = expireWaiting(s.waitingExpiry, s.waiting, bidsBound, 'impression_time')
    if (expired > 0) out.joined('bid_impression', 'expired', expired)
    forgetBelow(s.bidIds, watermark(s.bidsClock, g))
    forgetBelow(s.impIds, watermark(s.impsClock, g))
  }

  /** The impressions input's progress, sent downstream after this partition's forwarded records. */
  progress(): { watermark: number; idle: boolean } {
    return { watermark: watermark(this.state.impsClock, this.rules.graceMs), idle: this.state.impsClock.idle }
  }

  openKeys(): number {
    return this.state.bids.size + this.state.waiting.size
  }
}
