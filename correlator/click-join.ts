import { type ClockState, expiryWatermark, newClock, watermark } from './clock.js'
import type { ColumnSpec } from './columns.js'
import type { ClickEvent, ForwardedClick, ForwardedImpression, ProgressMarker, RecordRef } from './events.js'
import { addWaiting, type ExpiryState, expireUpTo, expireWaiting, newExpiry, schedule } from './expiry.js'
import { forgetBelow, type IdSetState, newIdSet } from './id-set.js'
import { admit } from './late.js'
import type { BatchOutput } from './output.js'
import { bound, mark, newProgress, type ProgressState } from './progress.js'
import {
  type ClickRow,
  F_CLICKS,
  F_CLICKS_INVALID,
  F_CLICKS_VALID,
  F_QUALITY_EVENTS,
  F_QUALITY_FLAGGED,
} from './rows.js'
import { isBotAgent, type JoinRules } from './rules.js'

/**
 * Stage 2, one partition of adgate.clicks + the re-keyed impressions (both keyed by impression
 * id). Joins each click to its impression within the click window and flags invalid traffic:
 *   no_impression  no impression joined (none, or outside the window)
 *   duplicate      not the first click on its impression (by event time, then event id)
 *   too_soon       less than minClickDelayMs after the impression
 *   bot            user agent on the bot / data-centre list
 * A click with no flag is valid. Clicks are written at once and restated when a flag changes
 * (its impression arrives, an earlier click on the same impression arrives), with the counters
 * moved between valid and invalid. Every click is forwarded to the conversion join.
 *
 * State: impressions until the clicks watermark passed time + window; clicks without an
 * impression until the impressions' in-band watermark passed the click's time.
 */
interface ImpressionEntry {
  time: number
  /** Joined clicks, ascending by (time, event id). */
  clicks: ClickRow[]
}

/** How `impressions` is stored in a snapshot (columns.ts). */
export const IMPRESSION_ENTRY_COLUMNS: ColumnSpec<ImpressionEntry> = { time: 'number', clicks: 'value' }

export interface ClickJoinState {
  clicksClock: ClockState
  clickIds: IdSetState
  impressions: Map<string, ImpressionEntry>
  impressionExpiry: ExpiryState
  /** impression id → clicks that have no impression (yet). */
  orphans: Map<string, ClickRow[]>
  orphanExpiry: ExpiryState
  upstream: ProgressState
}

export function newClickJoinState(): ClickJoinState {
  return {
    clicksClock: newClock(),
    clickIds: newIdSet(),
    impressions: new Map(),
    impressionExpiry: newExpiry(),
    orphans: new Map(),
    orphanExpiry: newExpiry(),
    upstream: newProgress(),
  }
}

export class ClickJoin {
  constructor(
    readonly partition: number,
    readonly rules: JoinRules,
    readonly state: ClickJoinState,
    private readonly upstreamPartitions: number,
    private readonly forward: (click: ForwardedClick, out: BatchOutput) => void,
  ) {}

  onImpression(imp: ForwardedImpression, out: BatchOutput): void {
    const s = this.state
    // Re-sent after an upstream restart: the first copy already joined whatever it could.
    if (s.impressions.has(imp.impression_id)) return
    const entry: ImpressionEntry = { time: imp.time, clicks: [] }
    s.impressions.set(imp.impression_id, entry)
    schedule(s.impressionExpiry, imp.impression_id, imp.time + this.rules.clickWindowMs)
    const orphans = s.orphans.get(imp.impression_id)
    if (orphans === undefined) return
    s.orphans.delete(imp.impression_id)
    let joined = false
    for (const c of orphans) {
      const d = c.click_time - imp.time
      if (d < 0 || d > this.rules.clickWindowMs) {
        out.joined('impression_click', 'outside_window')
        continue
      }
      out.joined('impression_click', 'matched')
      entry.clicks.push(c)
      joined = true
    }
    if (joined) {
      entry.clicks.sort(byTimeThenId)
      this.reflag(entry, out)
    }
  }

  onMarker(m: ProgressMarker): void {
    mark(this.state.upstream, m)
  }

  onClick(e: ClickEvent, ref: RecordRef, out: BatchOutput, wallNow: number): void {
    const s = this.state
    const rules = this.rules
    if (!admit(out, ref, 'click', e, s.clicksClock, s.clickIds, rules.graceMs, wallNow)) return
    const row: ClickRow = {
      click_id: e.click_id,
      event_id: e.event_id,
      impression_id: e.impression_id,
      campaign_id: e.campaign_id,
      click_time: e.event_time,
      impression_time: null,
      is_bot: isBotAgent(rules, e.user_agent),
      is_duplicate: false,
      is_no_impression: true,
      is_too_soon: false,
      valid: false,
      quality_flags: e.quality_flags ?? null,
    }
    out.count(2, this.partition, row.campaign_id, row.click_time, F_CLICKS, 1)
    out.count(2, this.partition, row.campaign_id, row.click_time, F_QUALITY_EVENTS, 1)
    if (row.quality_flags) out.count(2, this.partition, row.campaign_id, row.click_time, F_QUALITY_FLAGGED, 1)
    // Counted invalid (no impression) first; reflag moves it when it joins.
    out.count(2, this.partition, row.campaign_id, row.click_time, F_CLICKS_INVALID, 1)
    const entry = s.impressions.get(e.impression_id)
    if (entry !== undefined) {
      const d = e.event_time - entry.time
      if (d >= 0 && d <= rules.clickWindowMs) {
        insertSorted(entry.clicks, row)
        this.reflag(entry, out, row)
        out.joined('impression_click', 'matched')
      } else {
        out.click(row)
        out.joined('impression_click', 'outside_window')
      }
    } else {
      addWaiting(s.orphanExpiry, s.orphans, e.impression_id, row, e.event_time)
      out.click(row)
    }
    this.forward({ click_id: e.click_id, time: e.event_time }, out)
  }

  /** Recomputes the flags of an impression's joined clicks; writes and re-counts those that changed. */
  private reflag(entry: ImpressionEntry, out: BatchOutput, added?: ClickRow): void {
    const rules = this.rules
    for (let i = 0; i < entry.clicks.length; i++) {
      const c = entry.clicks[i]!
      const tooSoon = c.click_time - entry.time < rules.minClickDelayMs
      const duplicate = i > 0
      const valid = !c.is_bot && !tooSoon && !duplicate
      const changed =
        c.is_no_impression || c.is_duplicate !== duplicate || c.is_too_soon !== tooSoon || c.valid !== valid
      if (!changed && c !== added) continue
      const wasValid = c.valid
      // Rows handed to the output are immutable once written: replace, don't mutate.
      const next: ClickRow = {
        ...c,
        impression_time: entry.time,
        is_no_impression: false,
        is_duplicate: duplicate,
        is_too_soon: tooSoon,
        valid,
      }
      entry.clicks[i] = next
      if (wasValid !== valid) {
        const sign = valid ? 1 : -1
        out.count(2, this.partition, c.campaign_id, c.click_time, F_CLICKS_VALID, sign)
        out.count(2, this.partition, c.campaign_id, c.click_time, F_CLICKS_INVALID, -sign)
      }
      out.click(next)
    }
  }

  expire(out: BatchOutput): void {
    const s = this.state
    const g = this.rules.graceMs
    const clicksBound = expiryWatermark(s.clicksClock, g)
    const w = this.rules.clickWindowMs
    expireUpTo(s.impressionExpiry, clicksBound, (id) => {
      const entry = s.impressions.get(id)
      if (entry !== undefined && entry.time + w < clicksBound) s.impressions.delete(id)
    })
    const impsBound = bound(s.upstream, this.upstreamPartitions)
    const expired = expireWaiting(s.orphanExpiry, s.orphans, impsBound, 'click_time')
    if (expired > 0) out.joined('impression_click', 'expired', expired)
    forgetBelow(s.clickIds, watermark(s.clicksClock, g))
  }

  progress(): { watermark: number; idle: boolean } {
    return {
      watermark: watermark(this.state.clicksClock, this.rules.graceMs),
      idle: this.state.clicksClock.idle,
    }
  }

  openKeys(): number {
    return this.state.impressions.size + this.state.orphans.size
  }
}

function byTimeThenId(a: ClickRow, b: ClickRow): number {
  return a.click_time - b.click_time || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0)
}

function insertSorted(list: ClickRow[], row: ClickRow): void {
  let i = list.length
  while (i > 0 && byTimeThenId(list[i - 1]!, row) > 0) i--
  list.splice(i, 0, row)
}
