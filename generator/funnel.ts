import type { EventType } from '../events/catalog.js'
import { BOT_USER_AGENTS, type Event, makeBid, makeClick, makeConversion, makeImpression } from './events.js'
import { Random } from './random.js'

/**
 * A consistent funnel: bids → 20–40 % wins → impressions → 1–2 % clicks → 2–10 % conversions
 * (rates drawn per campaign), in event-time order per type, with knobs for the disorder real
 * traffic has. Deterministic for a seed.
 */
export interface FunnelOptions {
  seed: number
  bids: number
  /** Event time of the first bid (epoch ms). A fixed default keeps outputs reproducible. */
  start?: number
  /** Bids are spread evenly over this span. */
  spanMs?: number
  /** Share of events sent twice (same event_id), later in the stream. */
  duplicates?: number
  /** Share of events swapped with a neighbour a few positions away. */
  outOfOrder?: number
  /** Share of events held back and sent at the end of the stream (late arrivals). */
  late?: number
  /** Share of events replaced by an invalid variant (see invalid.ts). */
  invalid?: number
  /** Share of clicks sent with a bot user agent. */
  botClicks?: number
}

export interface Funnel {
  bid: Event[]
  impression: Event[]
  click: Event[]
  conversion: Event[]
  /** Per type, the stream positions holding invalid events. */
  invalidAt: Record<EventType, number[]>
}

export const DEFAULT_START = Date.UTC(2026, 10, 1)
const MINUTE = 60_000

export function generateFunnel(options: FunnelOptions): Funnel {
  const rng = new Random(options.seed)
  const start = options.start ?? DEFAULT_START
  const span = options.spanMs ?? 60 * MINUTE
  const rates = new Map<string, { win: number; ctr: number; cvr: number }>()
  const rateOf = (campaign: string) => {
    let r = rates.get(campaign)
    if (!r) {
      r = { win: 0.2 + rng.float() * 0.2, ctr: 0.01 + rng.float() * 0.01, cvr: 0.02 + rng.float() * 0.08 }
      rates.set(campaign, r)
    }
    return r
  }

  const funnel: Funnel = { bid: [], impression: [], click: [], conversion: [], invalidAt: emptyIndex() }
  for (let i = 0; i < options.bids; i++) {
    const t = start + Math.floor((i * span) / Math.max(1, options.bids))
    const bid = makeBid(rng, t)
    funnel.bid.push(bid)
    if (bid.campaign_id === null) continue
    const rate = rateOf(bid.campaign_id as string)
    if (!rng.chance(rate.win)) continue
    const imp = makeImpression(rng, bid, t + rng.int(20, 400))
    funnel.impression.push(imp)
    if (!rng.chance(rate.ctr)) continue
    const bot = rng.chance(options.botClicks ?? 0) ? rng.pick(BOT_USER_AGENTS) : undefined
    // Most clicks come within a minute or two; the tail reaches the 30-minute window.
    const click = makeClick(
      rng,
      imp,
      (imp.event_time as number) + 1000 + Math.floor(rng.exponential(90_000)),
      bot,
    )
    funnel.click.push(click)
    if (!rng.chance(rate.cvr)) continue
    funnel.conversion.push(
      makeConversion(rng, click, (click.event_time as number) + Math.floor(rng.exponential(3_600_000))),
    )
  }
  for (const type of ['bid', 'impression', 'click', 'conversion'] as const) {
    const stream = funnel[type].sort((a, b) => (a.event_time as number) - (b.event_time as number))
    funnel[type] = disorder(rng, stream, options)
    funnel.invalidAt[type] = corrupt(rng, funnel[type], options.invalid ?? 0)
  }
  return funnel
}

/** Events of one type with fresh (unsent) parents: for load and benchmarks that need one type only. */
export function generateEvents(type: EventType, count: number, seed: number, start = DEFAULT_START): Event[] {
  const rng = new Random(seed)
  const out: Event[] = []
  for (let i = 0; i < count; i++) {
    const t = start + i * 10
    const bid = makeBid(rng, t)
    if (type === 'bid') {
      out.push(bid)
      continue
    }
    if (bid.campaign_id === null) bid.campaign_id = 'cmp-001'
    const imp = makeImpression(rng, bid, t + 50)
    if (type === 'impression') {
      out.push(imp)
      continue
    }
    const click = makeClick(rng, imp, t + 5000)
    out.push(type === 'click' ? click : makeConversion(rng, click, t + 60_000))
  }
  return out
}

function emptyIndex(): Record<EventType, number[]> {
  return { bid: [], impression: [], click: [], conversion: [] }
}

function disorder(rng: Random, stream: Event[], options: FunnelOptions): Event[] {
  const out = stream.slice()
  const swaps = Math.floor(out.length * (options.outOfOrder ?? 0))
  for (let s = 0; s < swaps; s++) {
    const i = rng.int(0, out.length - 1)
    const j = Math.min(out.length - 1, i + rng.int(1, 20))
    const tmp = out[i]!
    out[i] = out[j]!
    out[j] = tmp
  }
  const late: Event[] = []
  const kept: Event[] = []
  for (const e of out) (rng.chance(options.late ?? 0) ? late : kept).push(e)
  const result = kept.concat(late)
  const dupes = Math.floor(result.length * (options.duplicates ?? 0))
  for (let d = 0; d < dupes; d++) {
    const i = rng.int(0, result.length - 1)
    result.splice(rng.int(i, result.length), 0, structuredClone(result[i]!))
  }
  return result
}

// Invalid variants every encoding can carry (Avro cannot hold a string where a long belongs),
// so one funnel can be sent as JSON, CSV or Avro with the same expected rejections.
const CORRUPTIONS: ((e: Event) => void)[] = [
  (e) => {
    e.event_id = ''
  },
  (e) => {
    e.event_time = -1
  },
  (e) => {
    for (const k of ['cost_micros', 'value_micros', 'bid_price_micros']) if (k in e) e[k] = -100
    if (!('cost_micros' in e || 'value_micros' in e || 'bid_price_micros' in e)) e.event_id = 'x'.repeat(65)
  },
  (e) => {
    if ('campaign_id' in e) e.campaign_id = 'c'.repeat(65)
    else e.event_id = ''
  },
]

function corrupt(rng: Random, stream: Event[], share: number): number[] {
  const at: number[] = []
  if (share <= 0) return at
  for (let i = 0; i < stream.length; i++) {
    if (!rng.chance(share)) continue
    const bad = structuredClone(stream[i]!)
    rng.pick(CORRUPTIONS)(bad)
    stream[i] = bad
    at.push(i)
  }
  return at
}
