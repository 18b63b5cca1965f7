/**
 * Quality scores: the share of events that passed every rule (neither rejected nor flagged by
 * one), per key, over a sliding 1-minute and 1-hour window. Ring buffers of per-second and
 * per-minute counts, fed once per request (never per event), read at scrape time.
 */
export const SCORE_WINDOWS = { '1m': 60_000, '1h': 3_600_000 } as const
export type ScoreWindow = keyof typeof SCORE_WINDOWS

class Ring {
  readonly checked: Float64Array
  readonly passed: Float64Array
  /** Slot index (time / slotMs) that each slot currently holds. */
  readonly at: Float64Array

  constructor(
    readonly slots: number,
    readonly slotMs: number,
  ) {
    this.checked = new Float64Array(slots)
    this.passed = new Float64Array(slots)
    this.at = new Float64Array(slots).fill(-1)
  }

  add(now: number, checked: number, passed: number): void {
    const slot = Math.floor(now / this.slotMs)
    const i = slot % this.slots
    if (this.at[i] !== slot) {
      this.at[i] = slot
      this.checked[i] = 0
      this.passed[i] = 0
    }
    this.checked[i]! += checked
    this.passed[i]! += passed
  }

  totals(now: number): [checked: number, passed: number] {
    const newest = Math.floor(now / this.slotMs)
    let checked = 0
    let passed = 0
    for (let i = 0; i < this.slots; i++) {
      if (this.at[i]! > newest - this.slots) {
        checked += this.checked[i]!
        passed += this.passed[i]!
      }
    }
    return [checked, passed]
  }
}

export class QualityScores<K extends string = string> {
  private readonly rings = new Map<K, { minute: Ring; hour: Ring }>()

  add(key: K, checked: number, passed: number, now = Date.now()): void {
    if (checked === 0) return
    let r = this.rings.get(key)
    if (r === undefined) {
      r = { minute: new Ring(60, 1000), hour: new Ring(60, 60_000) }
      this.rings.set(key, r)
    }
    r.minute.add(now, checked, passed)
    r.hour.add(now, checked, passed)
  }

  /** passed / checked over the window; null when nothing was checked in it. */
  score(key: K, window: ScoreWindow, now = Date.now()): number | null {
    const r = this.rings.get(key)
    if (r === undefined) return null
    const [checked, passed] = (window === '1m' ? r.minute : r.hour).totals(now)
    return checked === 0 ? null : passed / checked
  }

  keys(): IterableIterator<K> {
    return this.rings.keys()
  }
}
