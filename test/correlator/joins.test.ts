import { afterEach, describe, expect, it, vi } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { BatchOutput, emptyJoinCounts, JOIN_RESULTS, JOINS } from '../../correlator/output.js'
import { DEFAULT_RULES, type JoinRules } from '../../correlator/rules.js'
// Declaration mirrored in test/support/array-source.ts: both implement the correlator's EventSource
// (ListSource here, records in the order given; ArraySource there, partitions interleaved at random).
import type {
  EventSource,
  PartitionEnd,
  Position,
  SourceHandlers,
  SourceRecord,
} from '../../correlator/source.js'
import { EVENT_INFO, type EventType } from '../../events/catalog.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeWire } from '../../events/wire.js'
import { MemoryStorage } from '../../storage/memory.js'
import { StallingStorage } from '../support/stalling-storage.js'

const T0 = Date.UTC(2026, 10, 1, 10, 0, 0)
const MIN = 60_000
const RULES: JoinRules = { ...DEFAULT_RULES, graceMs: 60_000, minClickDelayMs: 1000 }

type Ev = { type: EventType; event: Record<string, unknown> }

const bid = (id: string, t: number, campaign: string | null = 'c1'): Ev => ({
  type: 'bid',
  event: {
    event_id: `b-${id}-${t}`,
    event_time: t,
    campaign_id: campaign,
    bid_price_micros: 2000,
    request: { id, imp: [{ id: '1' }] },
  },
})
const imp = (id: string, auction: string, t: number, eventId = `i-${id}`): Ev => ({
  type: 'impression',
  event: {
    event_id: eventId,
    event_time: t,
    impression_id: id,
    auction_id: auction,
    campaign_id: 'c1',
    cost_micros: 1000,
  },
})
const click = (id: string, impression: string, t: number, ua = 'Mozilla/5.0 Safari'): Ev => ({
  type: 'click',
  event: {
    event_id: `k-${id}`,
    event_time: t,
    click_id: id,
    impression_id: impression,
    campaign_id: 'c1',
    user_agent: ua,
  },
})
const conversion = (id: string, clickId: string, t: number): Ev => ({
  type: 'conversion',
  event: {
    event_id: `v-${id}`,
    event_time: t,
    conversion_id: id,
    click_id: clickId,
    campaign_id: 'c1',
    value_micros: 5_000_000,
  },
})

/** Delivers records in exactly the given order, `perBatch` at a time, all on partition 0. */
class ListSource implements EventSource {
  readonly committed: Position[] = []
  constructor(
    private readonly records: SourceRecord[],
    private readonly perBatch: number,
  ) {}
  async partitions() {
    return 1
  }
  async start(h: SourceHandlers) {
    for (let i = 0; i < this.records.length; i += this.perBatch)
      await h.onBatch(this.records.slice(i, i + this.perBatch))
  }
  async commit(p: Position[]) {
    this.committed.push(...p)
  }
  async seek() {}
  async stop() {}
  /** Every partition's end is its last record's offset + 1: everything is already appended. */
  async ends(): Promise<PartitionEnd[]> {
    const ends = new Map<string, bigint>()
    for (const r of this.records) ends.set(r.topic, BigInt(r.offset) + 1n)
    return [...ends].map(([topic, end]) => ({ topic, partition: 0, end }))
  }
}

function records(events: Ev[]): SourceRecord[] {
  const next = new Map<string, number>()
  return events.map(({ type, event }) => {
    const schema = EVENT_SCHEMAS[type]
    const full = schema.type.fromBuffer(schema.type.toBuffer(schema.type.clone(event, { wrapUnions: false })))
    const topic = EVENT_INFO[type].topic
    const offset = next.get(topic) ?? 0
    next.set(topic, offset + 1)
    return { topic, partition: 0, offset: String(offset), key: null, value: encodeWire(schema, full) }
  })
}

async function run(events: Ev[], perBatch = 1, rules = RULES) {
  const storage = new MemoryStorage()
  const c = new Correlator(
    { rules, storage, source: new ListSource(records(events), perBatch), checkpointMs: 1e9, idleMs: 1e9 },
    1,
  )
  await c.start()
  await c.stop()
  return { storage, correlator: c }
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs]
  return xs.flatMap((x, i) =>
    permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]),
  )
}

function totals(s: MemoryStorage) {
  const sum: Record<string, number> = {}
  const names = ['bids', 'wins', 'impressions', 'spend', 'clicks', 'valid', 'invalid', 'conversions', 'value']
  for (const v of s.hour.values())
    for (const [i, x] of v.entries()) sum[names[i]!] = (sum[names[i]!] ?? 0) + x
  return sum
}

describe('joins in every arrival order', () => {
  const chain = [
    bid('a1', T0),
    imp('i1', 'a1', T0 + 200),
    click('k1', 'i1', T0 + 5000),
    conversion('v1', 'k1', T0 + 3_600_000),
  ]

  it.each(permutations(chain).map((p) => [p.map((e) => e.type).join(' → '), p]))(
    '%s: bid, impression, click and conversion all join',
    async (_name, order) => {
      const { storage } = await run(order as Ev[])
      const i = storage.impressions.get('i1')!
      expect(i).toMatchObject({ bid_time: T0, bid_price_micros: 2000, impression_time: T0 + 200 })
      expect(storage.clicks.get('k1')).toMatchObject({
        impression_time: T0 + 200,
        valid: true,
        is_no_impression: false,
      })
      expect(storage.conversions.get('v1')).toMatchObject({ attributed: true, click_time: T0 + 5000 })
      expect(totals(storage)).toMatchObject({
        bids: 1,
        wins: 1,
        impressions: 1,
        spend: 1000,
        clicks: 1,
        valid: 1,
        invalid: 0,
        conversions: 1,
        value: 5_000_000,
      })
    },
  )

  const doubleClick = [
    imp('i1', 'a1', T0),
    click('k1', 'i1', T0 + 5000),
    click('k2', 'i1', T0 + 9000),
    click('k3', 'i1', T0 + 500),
  ]
  it.each(
    permutations(doubleClick).map((p) => [
      p.map((e) => (e.event.click_id as string) ?? 'imp').join(' → '),
      p,
    ]),
  )(
    '%s: the first click is too soon, later ones are duplicates, counted gross and net',
    async (_name, order) => {
      const { storage } = await run(order as Ev[])
      expect(storage.clicks.get('k3')).toMatchObject({ is_too_soon: true, is_duplicate: false, valid: false })
      expect(storage.clicks.get('k1')).toMatchObject({ is_too_soon: false, is_duplicate: true, valid: false })
      expect(storage.clicks.get('k2')).toMatchObject({ is_duplicate: true, valid: false })
      expect(totals(storage)).toMatchObject({ clicks: 3, valid: 0, invalid: 3 })
    },
  )
})

describe('windows and flags', () => {
  it('a click outside the 30-minute window, or with no impression at all, is no_impression', async () => {
    const { storage } = await run([
      imp('i1', 'a1', T0),
      click('k2', 'nope', T0 + 2 * MIN),
      click('k1', 'i1', T0 + 31 * MIN),
    ])
    expect(storage.clicks.get('k1')).toMatchObject({
      is_no_impression: true,
      impression_time: null,
      valid: false,
    })
    expect(storage.clicks.get('k2')).toMatchObject({ is_no_impression: true, valid: false })
  })

  it('a click before its impression does not join', async () => {
    const { storage } = await run([click('k1', 'i1', T0), imp('i1', 'a1', T0 + 1000)])
    expect(storage.clicks.get('k1')).toMatchObject({ is_no_impression: true })
  })

  it('bot and data-centre user agents are flagged, case-insensitively', async () => {
    const { storage } = await run([
      imp('i1', 'a1', T0),
      imp('i2', 'a2', T0),
      click('k1', 'i1', T0 + 5000, 'Mozilla/5.0 (compatible; GoogleBot/2.1)'),
      click('k2', 'i2', T0 + 5000, 'python-requests/2.32.3'),
    ])
    expect(storage.clicks.get('k1')).toMatchObject({ is_bot: true, valid: false })
    expect(storage.clicks.get('k2')).toMatchObject({ is_bot: true, valid: false })
  })

  it('a conversion after the 7-day window is kept unattributed and not counted', async () => {
    const { storage } = await run([
      imp('i1', 'a1', T0),
      click('k1', 'i1', T0 + 5000),
      conversion('v1', 'k1', T0 + 5000 + 7 * 24 * 60 * MIN + 1),
      conversion('v2', 'k1', T0 + 5000 + 7 * 24 * 60 * MIN),
    ])
    expect(storage.conversions.get('v1')).toMatchObject({ attributed: false, click_time: null })
    expect(storage.conversions.get('v2')).toMatchObject({ attributed: true })
    expect(totals(storage).conversions).toBe(1)
  })

  it('an impression more than the impression window after its bid does not win it', async () => {
    const { storage } = await run([bid('a1', T0), imp('i1', 'a1', T0 + 11 * MIN)])
    expect(storage.impressions.get('i1')!.bid_time).toBeNull()
    expect(totals(storage)).toMatchObject({ bids: 1, wins: 0, impressions: 1 })
  })
})

describe('dedup, grace and late events', () => {
  it('the same event twice is counted once', async () => {
    const i = imp('i1', 'a1', T0)
    const { storage } = await run([i, click('k1', 'i1', T0 + 5000), i, click('k1', 'i1', T0 + 5000)])
    expect(totals(storage)).toMatchObject({ impressions: 1, clicks: 1, valid: 1 })
  })

  it('an event within the grace period counts; one beyond it is set aside as late, with its bytes', async () => {
    const { storage } = await run([
      imp('i1', 'a1', T0 + 10 * MIN),
      imp('i2', 'a2', T0 + 9 * MIN), // 1 min behind: within grace
      imp('i3', 'a3', T0 + 8 * MIN - 1), // just beyond
    ])
    expect([...storage.impressions.keys()].sort()).toEqual(['i1', 'i2'])
    const late = [...storage.late.values()]
    expect(late).toHaveLength(1)
    expect(late[0]).toMatchObject({
      event_id: 'i-i3',
      event_type: 'impression',
      offset: '2',
      watermark: T0 + 9 * MIN,
    })
    expect(late[0]!.value.length).toBeGreaterThan(5)
    expect(totals(storage).impressions).toBe(2)
  })

  it('a duplicate arriving after its id was forgotten is late, not counted twice', async () => {
    const first = imp('i1', 'a1', T0)
    const { storage } = await run([first, imp('i2', 'a2', T0 + 30 * MIN), imp('i1', 'a1', T0)])
    expect(totals(storage).impressions).toBe(2)
    expect(storage.late.size).toBe(1)
  })
})

describe('state stays bounded', () => {
  it('joined and unjoinable keys are dropped once the watermark passes their window', async () => {
    const events: Ev[] = []
    for (let n = 0; n < 100; n++)
      events.push(bid(`a${n}`, T0 + n * 1000), imp(`i${n}`, `a${n}`, T0 + n * 1000 + 100))
    // Much later traffic on every input moves all watermarks past every window.
    const later = T0 + 8 * 24 * 60 * MIN
    events.push(
      bid('z', later),
      imp('iz', 'z', later + 100),
      click('kz', 'iz', later + 5000),
      conversion('vz', 'kz', later + 6000),
    )
    const { correlator } = await run(events, 500)
    // Left: the late traffic's own keys only.
    expect(correlator.pipeline.openKeys()).toBeLessThanOrEqual(4)
  })

  it('an idle input stops holding state back (wall clock), so keys expire without new events', async () => {
    const storage = new MemoryStorage()
    let now = 0
    const c = new Correlator(
      {
        rules: RULES,
        storage,
        source: new ListSource(records([imp('i1', 'a1', T0), click('k1', 'nope', T0 + 5000)]), 10),
        checkpointMs: 1e9,
        idleMs: 1000,
        now: () => now,
      },
      1,
    )
    await c.start()
    expect(c.pipeline.openKeys()).toBeGreaterThan(0)
    now = 5000
    // Every input read to its end (the bids and conversions inputs never had a record).
    const caughtUp = new Set(Object.values(EVENT_INFO).map((e) => `${e.topic}:0`))
    c.pipeline.tick(now, 1000, caughtUp)
    c.pipeline.begin(new BatchOutput(), now)
    c.pipeline.end()
    expect(c.pipeline.openKeys()).toBe(0)
    await c.stop()
  })
})

describe('idleness needs the input read to its end (ADGATE_IDLE_TIMEOUT)', () => {
  // Only the idle timer is faked: the test decides when it fires, everything else runs as is.
  afterEach(() => {
    vi.useRealTimers()
  })
  const IDLE_MS = 60_000

  /** Starts a correlator over `events`, one record per batch, whose first write stalls for an hour of wall time. */
  async function stalledRun(events: Ev[]) {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const storage = new StallingStorage()
    let now = 0
    const c = new Correlator(
      {
        rules: RULES,
        storage,
        source: new ListSource(records(events), 1),
        checkpointMs: 1e9,
        idleMs: IDLE_MS,
        now: () => now,
      },
      1,
    )
    const running = c.start()
    await storage.stalled
    now += 3_600_000
    // Idle ticks fire during the stall and queue behind the write.
    vi.advanceTimersByTime(2 * IDLE_MS)
    storage.release()
    await running
    await c.stop()
    return { storage, correlator: c }
  }

  it('regression: a write stalled past the idle timeout with records still unread changes no join', async () => {
    // b2 is a batch of its own after the stall: had the impressions input turned idle, its end of
    // batch would expire a1's bid before i1 is read (98,913 wins instead of 131,736 in one bench run).
    const events = [bid('a1', T0), bid('a2', T0 + 300), imp('i1', 'a1', T0 + 200)]
    const { storage } = await stalledRun(events)
    expect(totals(storage)).toMatchObject({ bids: 2, wins: 1, impressions: 1 })
    expect(totals(storage)).toEqual(totals((await run(events)).storage))
    expect(storage.impressions.get('i1')).toMatchObject({ bid_time: T0 })
  })

  it('an input read to its end and quiet for the timeout turns idle; one with records waiting does not', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const [b1, i1] = records([bid('a1', T0), imp('i1', 'a1', T0 + 200)])
    // Bids are read to their end; the impression is appended (in ends) but never handed over.
    const source = new ListSource([b1!], 1)
    const ends: EventSource = Object.assign(source, {
      ends: async (): Promise<PartitionEnd[]> => [
        { topic: b1!.topic, partition: 0, end: 1n },
        { topic: i1!.topic, partition: 0, end: 1n },
      ],
    })
    let now = 0
    const c = new Correlator(
      {
        rules: RULES,
        storage: new MemoryStorage(),
        source: ends,
        checkpointMs: 1e9,
        idleMs: IDLE_MS,
        now: () => now,
      },
      1,
    )
    await c.start()
    now += IDLE_MS
    vi.advanceTimersByTime(IDLE_MS)
    await c.stop() // runs after the queued idle check
    const auction = c.pipeline.joins.get(0)!.auction.state
    expect(auction.bidsClock.idle).toBe(true)
    expect(auction.impsClock.idle).toBe(false)
    // Conversions were never written to: nothing to read, so quiet means idle.
    expect(c.pipeline.joins.get(0)!.conversion.state.conversionsClock.idle).toBe(true)
  })
})

describe('restart', () => {
  it('regression: a new impression waits for the replay of a stored bid, so it still joins it', async () => {
    const storage = new MemoryStorage()
    const [b0, b1, i1] = records([bid('a0', T0), bid('a1', T0 + 10), imp('i1', 'a1', T0 + 200)])
    const opts = { rules: RULES, storage, checkpointMs: 1e9, idleMs: 1e9 }
    // First life: checkpoint after a0 (the first write), a1 stored but only in later positions.
    const first = new Correlator({ ...opts, source: new ListSource([b0!, b1!], 1) }, 1)
    await first.start()
    await first.stop()
    expect(storage.checkpoints.get(0)!.positions.find((p) => p.topic === 'adgate.bids')!.offset).toBe('1')
    // Second life: the new impression arrives before a1 is re-read from the checkpoint.
    const second = new Correlator({ ...opts, source: new ListSource([i1!, b1!], 1) }, 1)
    await second.start()
    await second.stop()
    expect(storage.impressions.get('i1')).toMatchObject({ bid_time: T0 + 10 })
    expect(totals(storage)).toMatchObject({ bids: 2, wins: 1, impressions: 1 })
  })
})

describe('join outcome counts (adgate_correlator_joins_total)', () => {
  async function counts(events: Ev[]) {
    const total = emptyJoinCounts()
    const c = new Correlator(
      {
        rules: RULES,
        storage: new MemoryStorage(),
        source: new ListSource(records(events), 1),
        checkpointMs: 1e9,
        idleMs: 1e9,
        onBatch: (s) => {
          for (const j of JOINS) for (const r of JOIN_RESULTS) total[j][r] += s.joins[j][r]
        },
      },
      1,
    )
    await c.start()
    await c.stop()
    return total
  }
  const none = { matched: 0, outside_window: 0, expired: 0 }

  it('a whole funnel in any order: one match per join, nothing else', async () => {
    const chain = [
      bid('a1', T0),
      imp('i1', 'a1', T0 + 200),
      click('k1', 'i1', T0 + 5000),
      conversion('v1', 'k1', T0 + 3_600_000),
    ]
    for (const order of [chain, [...chain].reverse()]) {
      const one = { ...none, matched: 1 }
      expect(await counts(order)).toEqual({
        bid_impression: one,
        impression_click: one,
        click_conversion: one,
      })
    }
  })

  it('partners outside the window, and waiters whose partner never comes before the watermark', async () => {
    const got = await counts([
      imp('i1', 'a-missing', T0), // waits for a bid that never comes
      bid('a2', T0),
      imp('i2', 'a2', T0 + 11 * MIN), // bid 11 min before: outside the 10 min window
      click('k1', 'i2', T0 + 11 * MIN + 50 * MIN), // 50 min after its impression: outside 30 min
      conversion('v1', 'k-missing', T0 + 12 * MIN), // waits for a click that never comes
      bid('a3', T0 + 30 * MIN), // bids and clicks move on: the waiters above expire
      click('k2', 'i-none', T0 + 90 * MIN),
    ])
    expect(got.bid_impression).toEqual({ matched: 0, outside_window: 1, expired: 1 })
    expect(got.impression_click).toEqual({ matched: 0, outside_window: 1, expired: 0 })
    expect(got.click_conversion).toEqual({ matched: 0, outside_window: 0, expired: 1 })
  })
})

describe('partition lag (adgate_correlator_partition_lag_*)', () => {
  it('counts the records not yet read and dates the last one read', async () => {
    const events = [bid('a1', T0), imp('i1', 'a1', T0 + 200), bid('a2', T0 + 300), bid('a3', T0 + 400)]
    // Appended one second apart; the first two are delivered, the other two wait.
    const all = records(events).map((r, i) => ({ ...r, timestamp: T0 + i * 1000 }))
    const source = new ListSource(all.slice(0, 2), 1)
    const ends = new Map<string, number>()
    for (const r of all) ends.set(r.topic, Number(r.offset) + 1)
    const withEnds: EventSource = Object.assign(source, {
      ends: async () => [...ends].map(([topic, end]) => ({ topic, partition: 0, end: BigInt(end) })),
    })
    const now = T0 + 60_000
    const c = new Correlator(
      {
        rules: RULES,
        storage: new MemoryStorage(),
        source: withEnds,
        checkpointMs: 1e9,
        idleMs: 1e9,
        now: () => now,
      },
      1,
    )
    await c.start()
    const lag = new Map((await c.lag()).map((l) => [l.topic, l]))
    const bids = EVENT_INFO.bid.topic
    const imps = EVENT_INFO.impression.topic
    // bids: a1 read (appended at T0), a2 and a3 wait; impressions: i1 read, nothing waits.
    expect(lag.get(bids)).toEqual({ topic: bids, partition: 0, records: 2, seconds: 60 })
    expect(lag.get(imps)).toEqual({ topic: imps, partition: 0, records: 0, seconds: 0 })
    await c.stop()
  })
})
