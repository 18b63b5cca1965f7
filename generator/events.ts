import { Violation } from '../decoders/normalize.js'
import { normalizerFor } from '../decoders/normalizers.js'
import type { Random } from './random.js'

/**
 * Makers of single canonical events (the objects the Avro schemas describe), given their parent.
 * Values are drawn from small realistic pools so aggregates per campaign are meaningful.
 */
export type Event = Record<string, unknown>

export const CAMPAIGNS = Array.from({ length: 24 }, (_, i) => `cmp-${String(i + 1).padStart(3, '0')}`)
const PUBLISHERS = Array.from({ length: 40 }, (_, i) => `pub-${String(i + 1).padStart(3, '0')}`)
const DOMAINS = [
  'news.example',
  'sports.example',
  'recipes.example',
  'weather.example',
  'games.example',
  'video.example',
]
const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'BR', 'IN', 'JP', 'CA', 'AU', 'ES']
const COUNTRIES3 = ['USA', 'GBR', 'DEU', 'FRA', 'BRA', 'IND', 'JPN', 'CAN', 'AUS', 'ESP']
const DEVICE_TYPES = ['DESKTOP', 'MOBILE', 'MOBILE', 'MOBILE', 'TABLET', 'CTV']
const SIZES = [
  [300, 250],
  [728, 90],
  [320, 50],
  [160, 600],
]
export const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
]
export const BOT_USER_AGENTS = [
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'python-requests/2.32.3',
]
const CONVERSION_TYPES = ['PURCHASE', 'SIGNUP', 'INSTALL', 'LEAD', 'OTHER']

function ip(rng: Random): string {
  return `${rng.int(11, 223)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`
}

/**
 * A bid request as a bidder logs it: adgate's envelope (with the bidder's answer, campaign and
 * price) beside an OpenRTB 2.6 BidRequest, made canonical by the schema's own normalizer.
 */
export function makeBid(rng: Random, time: number): Event {
  const [w, h] = rng.pick(SIZES)!
  const domain = rng.pick(DOMAINS)
  const bidding = rng.chance(0.85)
  const floor = rng.int(5, 80) * 10_000
  const gpid = rng.chance(0.3) ? `/${domain}/slot-${rng.int(1, 9)}` : null
  const yob = rng.chance(0.2) ? rng.int(1950, 2005) : null
  const request = {
    id: `auc-${rng.hexId()}`,
    imp: [
      {
        id: '1',
        tagid: `tag-${rng.int(1, 500)}`,
        bidfloor: floor / 1e6,
        bidfloorcur: 'USD',
        banner: { format: [{ w, h }], w, h },
        ...(gpid ? { ext: { gpid } } : {}),
      },
    ],
    site: {
      id: `site-${rng.int(1, 300)}`,
      domain,
      page: `https://${domain}/article/${rng.int(1, 99_999)}`,
      cat: ['IAB1'],
      publisher: { id: rng.pick(PUBLISHERS) },
    },
    device: {
      ua: rng.pick(USER_AGENTS),
      ip: ip(rng),
      os: rng.pick(['iOS', 'Android', 'Windows', 'macOS']),
      devicetype: rng.int(1, 7),
      language: 'en',
      geo: { country: rng.pick(COUNTRIES3) },
    },
    user: { id: `u-${rng.hexId()}`, ...(yob === null ? {} : { yob }) },
    at: 1,
    tmax: 120,
    cur: ['USD'],
    regs: { coppa: 0, gdpr: 0 },
  }
  const event = normalizerFor(
    'bid',
    'json',
  )({
    event_id: `ev-${rng.hexId()}`,
    event_time: time,
    // A bidder that did not bid leaves campaign_id out (an explicit null would be kept in _unknown).
    ...(bidding ? { campaign_id: rng.pick(CAMPAIGNS) } : {}),
    bid_price_micros: bidding ? floor + rng.int(1, 200) * 10_000 : 0,
    request,
  })
  if (event instanceof Violation) throw new Error(`generator: invalid bid at ${event.field}: ${event.reason}`)
  return event as Event
}

/** The auction id of a bid made by makeBid. */
export function auctionOf(bid: Event): string {
  return (bid.request as { id: string }).id
}

/** What every posted event starts with; the gateway fills in ingest_time and source. */
function envelope(rng: Random, time: number): Event {
  return { event_id: `ev-${rng.hexId()}`, event_time: time, ingest_time: 0, source: '' }
}

export function makeImpression(rng: Random, bid: Event, time: number): Event {
  const device = bid.device as { ua: string; ip: string } | null
  const price = bid.bid_price_micros as number
  return {
    ...envelope(rng, time),
    impression_id: `imp-${rng.hexId()}`,
    auction_id: auctionOf(bid),
    campaign_id: (bid.campaign_id as string | null) ?? rng.pick(CAMPAIGNS),
    creative_id: `cr-${rng.int(1, 60)}`,
    publisher_id: rng.pick(PUBLISHERS),
    site_domain: rng.pick(DOMAINS),
    placement_id: `pl-${rng.int(1, 200)}`,
    // Second-price-ish clearing: below the bid, above zero.
    cost_micros: Math.max(1, Math.floor(price * (0.5 + rng.float() * 0.5))),
    currency: 'USD',
    device_type: rng.pick(DEVICE_TYPES),
    country: rng.pick(COUNTRIES),
    user_agent: device?.ua ?? rng.pick(USER_AGENTS),
    ip: device?.ip ?? ip(rng),
    _unknown: null, // nothing posted beyond the schema
  }
}

export function makeClick(rng: Random, impression: Event, time: number, userAgent?: string): Event {
  return {
    ...envelope(rng, time),
    click_id: `clk-${rng.hexId()}`,
    impression_id: impression.impression_id,
    campaign_id: impression.campaign_id,
    user_agent: userAgent ?? impression.user_agent,
    ip: impression.ip,
    landing_url: `https://shop.example/landing?c=${impression.campaign_id}`,
    _unknown: null, // nothing posted beyond the schema
  }
}

export function makeConversion(rng: Random, click: Event, time: number): Event {
  const type = rng.pick(CONVERSION_TYPES)
  const valued = type === 'PURCHASE' || rng.chance(0.2)
  return {
    ...envelope(rng, time),
    conversion_id: `cnv-${rng.hexId()}`,
    click_id: click.click_id,
    campaign_id: click.campaign_id,
    conversion_type: type,
    value_micros: valued ? rng.int(1, 500) * 1_000_000 + rng.int(0, 99) * 10_000 : 0,
    currency: valued ? 'USD' : null,
    _unknown: null, // nothing posted beyond the schema
  }
}
