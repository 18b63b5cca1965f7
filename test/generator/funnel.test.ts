import { describe, expect, it } from 'vitest'
import { Violation } from '../../decoders/normalize.js'
import { normalizerFor } from '../../decoders/normalizers.js'
import { EVENT_TYPES, type EventType } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { auctionOf, BOT_USER_AGENTS, type Event } from '../../generator/events.js'
import { DEFAULT_START, type Funnel, generateEvents, generateFunnel } from '../../generator/funnel.js'
import { Random } from '../../generator/random.js'

const ids = (events: Event[]) => events.map((e) => e.event_id as string)
const times = (events: Event[]) => events.map((e) => e.event_time as number)
const isSorted = (xs: number[]) => xs.every((x, i) => i === 0 || xs[i - 1]! <= x)

/** Schema-valid and within adgate's bounds, as the decoders would accept it. */
function acceptable(type: EventType, event: Event): boolean {
  return EVENT_SCHEMAS[type].type.isValid(event) && !(normalizerFor(type, 'avro')(event) instanceof Violation)
}

describe('Random', () => {
  it('is deterministic per seed and stays in range', () => {
    const a = new Random(42)
    const b = new Random(42)
    const c = new Random(43)
    const xs = Array.from({ length: 1000 }, () => a.next())
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs)
    expect(Array.from({ length: 1000 }, () => c.next())).not.toEqual(xs)
    const floats = Array.from({ length: 10_000 }, () => a.float())
    expect(floats.every((f) => f >= 0 && f < 1)).toBe(true)
    const ints = Array.from({ length: 10_000 }, () => a.int(3, 7))
    expect(ints.every((n) => Number.isInteger(n) && n >= 3 && n <= 7)).toBe(true)
    const seen = new Set(Array.from({ length: 2000 }, () => a.int(0, 9)))
    expect(seen.size).toBe(10)
    expect(a.hexId()).toMatch(/^[0-9a-f]{16}$/)
  })
})

describe('generateFunnel', () => {
  it('gives identical output for the same seed, and different output for another', () => {
    const knobs = {
      bids: 3000,
      duplicates: 0.02,
      outOfOrder: 0.05,
      late: 0.02,
      invalid: 0.01,
      botClicks: 0.1,
    }
    const a = generateFunnel({ seed: 7, ...knobs })
    expect(generateFunnel({ seed: 7, ...knobs })).toEqual(a)
    const b = generateFunnel({ seed: 8, ...knobs })
    for (const type of EVENT_TYPES) {
      if (a[type].length > 0) expect(ids(b[type])).not.toEqual(ids(a[type]))
    }
  })

  describe('over a large funnel', () => {
    const funnel = generateFunnel({ seed: 2026, bids: 200_000 })
    const bidding = funnel.bid.filter((b) => b.campaign_id !== null)

    it('has the stated rates: wins 20–40 % of bids that bid, CTR 1–2 %, CVR 2–10 %', () => {
      expect(funnel.bid).toHaveLength(200_000)
      expect(bidding.length / funnel.bid.length).toBeCloseTo(0.85, 1)
      const win = funnel.impression.length / bidding.length
      const ctr = funnel.click.length / funnel.impression.length
      const cvr = funnel.conversion.length / funnel.click.length
      expect(win).toBeGreaterThanOrEqual(0.2)
      expect(win).toBeLessThanOrEqual(0.4)
      // Campaign rates are drawn within the ranges; sampling noise gets a small tolerance.
      expect(ctr).toBeGreaterThanOrEqual(0.01 - 0.002)
      expect(ctr).toBeLessThanOrEqual(0.02 + 0.002)
      expect(cvr).toBeGreaterThanOrEqual(0.02 - 0.01)
      expect(cvr).toBeLessThanOrEqual(0.1 + 0.01)
    })

    it('has a win rate within 20–40 % for every campaign', () => {
      const bids = new Map<string, number>()
      const wins = new Map<string, number>()
      for (const b of bidding) bids.set(b.campaign_id as string, (bids.get(b.campaign_id as string) ?? 0) + 1)
      for (const i of funnel.impression)
        wins.set(i.campaign_id as string, (wins.get(i.campaign_id as string) ?? 0) + 1)
      expect(bids.size).toBeGreaterThan(10)
      for (const [campaign, n] of bids) {
        const rate = (wins.get(campaign) ?? 0) / n
        expect(rate, campaign).toBeGreaterThanOrEqual(0.2 - 0.03)
        expect(rate, campaign).toBeLessThanOrEqual(0.4 + 0.03)
      }
    })

    it('joins: every child names an existing parent of the same campaign and comes after it', () => {
      const bidsById = new Map(funnel.bid.map((b) => [auctionOf(b), b]))
      const impsById = new Map(funnel.impression.map((i) => [i.impression_id as string, i]))
      const clicksById = new Map(funnel.click.map((c) => [c.click_id as string, c]))
      const broken: string[] = []
      for (const i of funnel.impression) {
        const b = bidsById.get(i.auction_id as string)
        if (
          !b ||
          b.campaign_id !== i.campaign_id ||
          (i.event_time as number) <= (b.event_time as number) ||
          (i.cost_micros as number) > (b.bid_price_micros as number)
        )
          broken.push(`impression ${i.event_id}`)
      }
      for (const c of funnel.click) {
        const i = impsById.get(c.impression_id as string)
        if (!i || i.campaign_id !== c.campaign_id || (c.event_time as number) <= (i.event_time as number))
          broken.push(`click ${c.event_id}`)
      }
      for (const v of funnel.conversion) {
        const c = clicksById.get(v.click_id as string)
        if (!c || c.campaign_id !== v.campaign_id || (v.event_time as number) < (c.event_time as number))
          broken.push(`conversion ${v.event_id}`)
      }
      expect(broken).toEqual([])
    })

    it('without knobs: every stream in event-time order, ids unique, all events acceptable', () => {
      expect(funnel.bid[0]!.event_time).toBe(DEFAULT_START)
      for (const type of EVENT_TYPES) {
        expect(isSorted(times(funnel[type])), type).toBe(true)
        expect(new Set(ids(funnel[type])).size).toBe(funnel[type].length)
        expect(funnel.invalidAt[type]).toEqual([])
      }
      for (const type of EVENT_TYPES) {
        expect(funnel[type].slice(0, 5000).filter((e) => !acceptable(type, e))).toEqual([])
      }
    })
  })

  describe('knobs', () => {
    const base = generateFunnel({ seed: 99, bids: 20_000 })
    const stream = (f: Funnel) => f.impression

    it('duplicates: about that share of events again, same event_id, later in the stream', () => {
      const f = generateFunnel({ seed: 99, bids: 20_000, duplicates: 0.1 })
      const s = stream(f)
      const n = stream(base).length
      expect(s.length).toBe(n + Math.floor(n * 0.1))
      const first = new Map<string, number>()
      let dupes = 0
      s.forEach((e, i) => {
        const id = e.event_id as string
        if (first.has(id)) {
          dupes++
          expect(s[first.get(id)!]).toEqual(e)
          expect(i).toBeGreaterThan(first.get(id)!)
        } else first.set(id, i)
      })
      expect(dupes).toBe(Math.floor(n * 0.1))
      expect([...first.keys()].sort()).toEqual(ids(stream(base)).sort())
    })

    it('outOfOrder: the same events, no longer in event-time order', () => {
      const f = generateFunnel({ seed: 99, bids: 20_000, outOfOrder: 0.05 })
      expect(isSorted(times(stream(f)))).toBe(false)
      expect(ids(stream(f)).sort()).toEqual(ids(stream(base)).sort())
      expect(stream(f)).toHaveLength(stream(base).length)
    })

    it('late: about that share held back to the end, each part in order', () => {
      const f = generateFunnel({ seed: 99, bids: 20_000, late: 0.05 })
      const t = times(stream(f))
      expect(isSorted(t)).toBe(false)
      let cut = 1
      while (cut < t.length && t[cut - 1]! <= t[cut]!) cut++
      const tail = t.length - cut
      expect(isSorted(t.slice(cut))).toBe(true)
      expect(tail / t.length).toBeGreaterThan(0.03)
      expect(tail / t.length).toBeLessThan(0.07)
      expect(ids(stream(f)).sort()).toEqual(ids(stream(base)).sort())
    })

    it('invalid: the events at invalidAt, and only those, are refused', () => {
      const f = generateFunnel({ seed: 99, bids: 20_000, invalid: 0.05 })
      for (const type of EVENT_TYPES) {
        const bad = new Set(f.invalidAt[type])
        if (f[type].length >= 200) {
          expect(bad.size / f[type].length).toBeGreaterThan(0.02)
          expect(bad.size / f[type].length).toBeLessThan(0.08)
        }
        const refused = f[type].flatMap((e, i) => (acceptable(type, e) ? [] : [i]))
        expect(refused, type).toEqual(f.invalidAt[type])
      }
    })

    it('botClicks: that share of clicks carries a bot user agent', () => {
      const f = generateFunnel({ seed: 99, bids: 100_000, botClicks: 0.3 })
      const bots = f.click.filter((c) => BOT_USER_AGENTS.includes(c.user_agent as string)).length
      expect(bots / f.click.length).toBeGreaterThan(0.2)
      expect(bots / f.click.length).toBeLessThan(0.4)
      expect(base.click.filter((c) => BOT_USER_AGENTS.includes(c.user_agent as string))).toEqual([])
    })

    it('start and spanMs place the bids', () => {
      const f = generateFunnel({ seed: 1, bids: 100, start: 1_000_000, spanMs: 10_000 })
      expect(f.bid[0]!.event_time).toBe(1_000_000)
      expect(f.bid.at(-1)!.event_time as number).toBeLessThan(1_010_000)
    })
  })
})

describe('generateEvents', () => {
  it.each(EVENT_TYPES)(
    'gives count %s events, all acceptable, with unique ids, deterministic per seed',
    (type) => {
      const events = generateEvents(type, 500, 3)
      expect(events).toHaveLength(500)
      expect(events.filter((e) => !acceptable(type, e))).toEqual([])
      expect(new Set(ids(events)).size).toBe(500)
      expect(generateEvents(type, 500, 3)).toEqual(events)
      expect(ids(generateEvents(type, 500, 4))).not.toEqual(ids(events))
      expect(generateEvents(type, 0, 3)).toEqual([])
    },
  )

  it('gives events of the asked type: exactly its schema fields', () => {
    for (const type of EVENT_TYPES) {
      const fields = (EVENT_SCHEMAS[type].json as { fields: { name: string }[] }).fields.map((f) => f.name)
      for (const e of generateEvents(type, 20, 1)) expect(Object.keys(e)).toEqual(fields)
    }
  })
})
