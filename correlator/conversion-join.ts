import { type ClockState, expiryWatermark, newClock, watermark } from './clock.js'
import type { ConversionEvent, ForwardedClick, ProgressMarker, RecordRef } from './events.js'
import { addWaiting, type ExpiryState, expireUpTo, expireWaiting, newExpiry, schedule } from './expiry.js'
import { forgetBelow, type IdSetState, newIdSet } from './id-set.js'
import { admit } from './late.js'
import type { BatchOutput } from './output.js'
import { bound, mark, newProgress, type ProgressState } from './progress.js'
import {
  type ConversionRow,
  F_CONVERSION_VALUE,
  F_CONVERSIONS,
  F_QUALITY_EVENTS,
  F_QUALITY_FLAGGED,
} from './rows.js'
import type { JoinRules } from './rules.js'

/**
 * Stage 3, one partition of adgate.conversions + the re-keyed clicks (both keyed by click id).
 * A conversion is attributed to its click when 0 ≤ conversion.time − click.time ≤ window
 * (7 days by default); attributed conversions are counted with their value.
 *
 * The 7-day state is only what this join needs: click id → click time. Conversions that arrive
 * before their click wait until the clicks' in-band watermark passed their time.
 */
export interface ConversionJoinState {
  conversionsClock: ClockState
  conversionIds: IdSetState
  /** click id → click time, until the conversions watermark passed time + window. */
  clicks: Map<string, number>
  clickExpiry: ExpiryState
  orphans: Map<string, ConversionRow[]>
  orphanExpiry: ExpiryState
  upstream: ProgressState
}

export function newConversionJoinState(): ConversionJoinState {
  return {
    conversionsClock: newClock(),
    conversionIds: newIdSet(),
    clicks: new Map(),
    clickExpiry: newExpiry(),
    orphans: new Map(),
    orphanExpiry: newExpiry(),
    upstream: newProgress(),
  }
}

export class ConversionJoin {
  constructor(
    readonly partition: number,
    readonly rules: JoinRules,
    readonly state: ConversionJoinState,
    private readonly upstreamPartitions: number,
  ) {}

  onClick(click: ForwardedClick, out: BatchOutput): void {
    const s = this.state
    if (s.clicks.has(click.click_id)) return
    s.clicks.set(click.click_id, click.time)
    schedule(s.clickExpiry, click.click_id, click.time + this.rules.conversionWindowMs)
    const orphans = s.orphans.get(click.click_id)
    if (orphans === undefined) return
    s.orphans.delete(click.click_id)
    for (const c of orphans) {
      const d = c.conversion_time - click.time
      if (d < 0 || d > this.rules.conversionWindowMs) {
        out.joined('click_conversion', 'outside_window')
        continue
      }
      out.joined('click_conversion', 'matched')
      const next: ConversionRow = { ...c, click_time: click.time, attributed: true }
      out.conversion(next)
      this.count(next, out)
    }
  }

  onMarker(m: ProgressMarker): void {
    mark(this.state.upstream, m)
  }

  onConversion(e: ConversionEvent, ref: RecordRef, out: BatchOutput, wallNow: number): void {
    const s = this.state
    const rules = this.rules
    if (!admit(out, ref, 'conversion', e, s.conversionsClock, s.conversionIds, rules.graceMs, wallNow)) return
    const row: ConversionRow = {
      conversion_id: e.conversion_id,
      event_id: e.event_id,
      click_id: e.click_id,
      campaign_id: e.campaign_id,
      conversion_time: e.event_time,
      conversion_type: e.conversion_type,
      value_micros: e.value_micros,
      click_time: null,
      attributed: false,
      quality_flags: e.quality_flags ?? null,
    }
    out.count(3, this.partition, row.campaign_id, row.conversion_time, F_QUALITY_EVENTS, 1)
    if (row.quality_flags)
      out.count(3, this.partition, row.campaign_id, row.conversion_time, F_QUALITY_FLAGGED, 1)
    const clickTime = s.clicks.get(e.click_id)
    if (clickTime !== undefined) {
      const d = e.event_time - clickTime
      if (d >= 0 && d <= rules.conversionWindowMs) {
        row.click_time = clickTime
        row.attributed = true
        this.count(row, out)
        out.joined('click_conversion', 'matched')
      } else out.joined('click_conversion', 'outside_window')
    } else {
      addWaiting(s.orphanExpiry, s.orphans, e.click_id, row, e.event_time)
    }
    out.conversion(row)
  }

  private count(row: ConversionRow, out: BatchOutput): void {
    out.count(3, this.partition, row.campaign_id, row.conversion_time, F_CONVERSIONS, 1)
    out.count(3, this.partition, row.campaign_id, row.conversion_time, F_CONVERSION_VALUE, row.value_micros)
  }

  expire(out: BatchOutput): void {
    const s = this.state
    const convBound = expiryWatermark(s.conversionsClock, this.rules.graceMs)
    const w = this.rules.conversionWindowMs
    expireUpTo(s.clickExpiry, convBound, (id) => {
      const t = s.clicks.get(id)
      if (t !== undefined && t + w < convBound) s.clicks.delete(id)
    })
    const clicksBound = bound(s.upstream, this.upstreamPartitions)
    const expired = expireWaiting(s.orphanExpiry, s.orphans, clicksBound, 'conversion_time')
    if (expired > 0) out.joined('click_conversion', 'expired', expired)
    forgetBelow(s.conversionIds, watermark(s.conversionsClock, this.rules.graceMs))
  }

  openKeys(): number {
    return this.state.clicks.size + this.state.orphans.size
  }
}
