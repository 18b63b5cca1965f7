// The tracker routes as plain functions (STYLE: the edge without sockets): the real CSV decoder
// behind a fake ingest service that records events and can be told that Kafka is down.
import { describe, expect, it } from 'vitest'
import { parseHostPatterns } from '../../config/config.js'
import { decodeBody } from '../../decoders/decode.js'
import { Authenticator } from '../../gateway/auth.js'
import type { IngestInput } from '../../gateway/ingest.js'
import { TokenBucket } from '../../gateway/rate-limit.js'
import { RedirectGuard, signClickQuery } from '../../gateway/redirect-guard.js'
import { errorReply, jsonReply, type Reply } from '../../gateway/responses.js'
import { hitToCsv } from '../../gateway/tracker-query.js'
import {
  answerTracker,
  PIXEL_GIF,
  type TrackerDeps,
  type TrackerKind,
  type TrackerRequest,
} from '../../gateway/trackers.js'

const KEY = 'click-signing-key-0001'
const NOW = Date.UTC(2026, 11, 6, 3, 0, 0)

class FakeIngest {
  readonly events: Record<string, unknown>[] = []
  durable = true
  async ingest(input: IngestInput): Promise<Reply> {
    const decoded = decodeBody(input.body, { ...input, maxEvents: 1, maxBytes: 1 << 20 })
    if (!decoded.ok) return errorReply(decoded.error.code, decoded.error.detail, input.requestId)
    if (decoded.events.length === 0)
      return errorReply('ALL_EVENTS_INVALID', 'all 1 events are invalid', input.requestId, {
        errors: decoded.rejects.map(({ raw: _raw, ...r }) => r),
      })
    if (!this.durable) return errorReply('NOT_DURABLE', 'Kafka is down', input.requestId)
    this.events.push(...(decoded.events as Record<string, unknown>[]))
    return jsonReply(200, { accepted: 1, rejected: 0, request_id: input.requestId })
  }
}

function setup(options: { keys?: string; rps?: number } = {}) {
  const ingest = new FakeIngest()
  const deps: TrackerDeps = {
    ingest,
    auth: new Authenticator(
      options.keys === undefined
        ? undefined
        : [{ name: 'net', secret: options.keys, types: new Set(['conversion']), rps: 0 }],
      0,
    ),
    guard: new RedirectGuard(KEY, parseHostPatterns('shop.example.com')),
    bucket: options.rps ? new TokenBucket(options.rps, options.rps, Date.now()) : null,
    maxHeaderBytes: 4096,
  }
  const hit = (kind: TrackerKind, query: string, more: Partial<TrackerRequest> = {}) =>
    answerTracker(
      {
        kind,
        query,
        requestId: 'r-1',
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64)',
        ip: '203.0.113.7',
        apiKey: '',
        authorization: '',
        headerBytes: query.length + 100,
        receivedAt: NOW,
        ...more,
      },
      deps,
    )
  return { ingest, hit }
}

const IMPRESSION = 'impression_id=i-1&auction_id=a-1&campaign_id=c-1&cost_micros=1500'
const CLICK = `click_id=k-1&impression_id=i-1&campaign_id=c-1&url=${encodeURIComponent('https://shop.example.com/p?x=1')}`

describe('hitToCsv: a query string is one CSV record', () => {
  it('maps parameters to fields and fills the request facts the query leaves out', async () => {
    const { ingest, hit } = setup()
    await hit('pixel', `${IMPRESSION}&country=DE&device_type=MOBILE`)
    expect(ingest.events[0]).toMatchObject({
      impression_id: 'i-1',
      cost_micros: 1500,
      country: 'DE',
      device_type: 'MOBILE',
      event_time: NOW,
      ingest_time: NOW,
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64)',
      ip: '203.0.113.7',
      source: 'tracker',
    })
    expect(ingest.events[0]!.event_id).toMatch(/^t-[0-9a-f]{32}$/)
  })

  it('derives the same event id for the same query (a retried hit dedups), another for another', () => {
    const ctx = { ingestTime: NOW, userAgent: 'a', ip: '1.2.3.4' }
    const id = (q: string, c = ctx) =>
      /t-[0-9a-f]{32}/.exec(String(hitToCsv('impression', new URLSearchParams(q), c)))![0]
    expect(id(IMPRESSION)).toBe(id(IMPRESSION, { ingestTime: NOW + 5000, userAgent: 'b', ip: '5.6.7.8' }))
    expect(id(`${IMPRESSION}&r=204`)).toBe(id(IMPRESSION)) // control parameters are not the event
    expect(id(IMPRESSION.replace('i-1', 'i-2'))).not.toBe(id(IMPRESSION))
  })

  it('keeps what the sender gave: its event id and time, and values with commas, quotes and line breaks', async () => {
    const { ingest, hit } = setup()
    const ua = 'Agent "quoted", with\ncomma'
    await hit(
      'pixel',
      `${IMPRESSION}&event_id=e-1&event_time=2026-12-06T02:00:00Z&user_agent=${encodeURIComponent(ua)}`,
    )
    expect(ingest.events[0]).toMatchObject({
      event_id: 'e-1',
      event_time: Date.UTC(2026, 11, 6, 2),
      user_agent: ua,
    })
  })

  it('an empty parameter is an absent field; a repeated one is refused', async () => {
    const { ingest, hit } = setup()
    await hit('pixel', `${IMPRESSION}&country=&currency=`)
    expect(ingest.events[0]).toMatchObject({ country: null, currency: 'USD' })
    const ctx = { ingestTime: NOW, userAgent: '', ip: '' }
    expect(hitToCsv('impression', new URLSearchParams(`${IMPRESSION}&campaign_id=c-2`), ctx)).toBe(
      'parameter "campaign_id" is given twice',
    )
  })

  it('cuts a default to its field bound so a long user agent never invalidates the hit', async () => {
    const { ingest, hit } = setup()
    await hit('pixel', IMPRESSION, { userAgent: 'x'.repeat(5000) })
    expect((ingest.events[0]!.user_agent as string).length).toBe(1024)
  })
})

describe('the pixel', () => {
  it('answers a 1×1 GIF once durable, with no-cache headers and no cookie', async () => {
    const { hit } = setup()
    const reply = await hit('pixel', IMPRESSION)
    expect(reply.status).toBe(200)
    expect(reply.contentType).toBe('image/gif')
    expect(Buffer.from(reply.bytes!).subarray(0, 6).toString()).toBe('GIF89a')
    expect(reply.bytes).toBe(PIXEL_GIF)
    expect(reply.headers).toMatchObject({
      'Cache-Control': 'no-store, no-cache, must-revalidate, max-age=0',
      Pragma: 'no-cache',
      'X-Adgate-Event': 'durable',
    })
    expect(Object.keys(reply.headers!).map((h) => h.toLowerCase())).not.toContain('set-cookie')
  })

  it('answers 204 with r=204', async () => {
    const reply = await setup().hit('pixel', `${IMPRESSION}&r=204`)
    expect(reply.status).toBe(204)
    expect(reply.contentType).toBeNull()
  })

  it('still answers the GIF when the event cannot be made durable, saying so', async () => {
    const { ingest, hit } = setup()
    ingest.durable = false
    const reply = await hit('pixel', IMPRESSION)
    expect(reply.status).toBe(200)
    expect(reply.headers!['X-Adgate-Event']).toBe('not-durable')
  })

  it('answers 400 with the error table code for invalid parameters', async () => {
    const { hit } = setup()
    const missing = await hit('pixel', 'impression_id=i-1')
    expect(missing.status).toBe(400)
    expect(JSON.parse(missing.body).error.code).toBe('ALL_EVENTS_INVALID')
    const twice = await hit('pixel', `${IMPRESSION}&cost_micros=1`)
    expect(JSON.parse(twice.body).error.code).toBe('INVALID_QUERY')
  })

  it('is rate limited over ADGATE_TRACKER_RATE_LIMIT_RPS', async () => {
    const { hit } = setup({ rps: 1 })
    expect((await hit('pixel', IMPRESSION)).status).toBe(200)
    const limited = await hit('pixel', IMPRESSION)
    expect(limited.status).toBe(429)
    expect(limited.headers!['Retry-After']).toBe('1')
  })

  it('refuses an over-long URL and header block with 431', async () => {
    expect((await setup().hit('pixel', IMPRESSION, { headerBytes: 5000 })).status).toBe(431)
  })
})

describe('the click', () => {
  it('302s to an allow-listed landing URL once the click is durable; landing_url is recorded', async () => {
    const { ingest, hit } = setup()
    const reply = await hit('click', CLICK)
    expect(reply.status).toBe(302)
    expect(reply.headers).toMatchObject({
      Location: 'https://shop.example.com/p?x=1',
      'X-Adgate-Event': 'durable',
    })
    expect(ingest.events[0]).toMatchObject({ click_id: 'k-1', landing_url: 'https://shop.example.com/p?x=1' })
    expect(ingest.events[0]).not.toHaveProperty('url')
  })

  it('302s to a signed landing URL on any host', async () => {
    const q = `click_id=k-1&impression_id=i-1&campaign_id=c-1&url=${encodeURIComponent('https://elsewhere.test/')}`
    const reply = await setup().hit('click', signClickQuery(KEY, q))
    expect(reply.headers!.Location).toBe('https://elsewhere.test/')
  })

  it('answers 400 REDIRECT_NOT_ALLOWED, recording nothing, for an unverified landing URL', async () => {
    const { ingest, hit } = setup()
    const reply = await hit('click', CLICK.replace('shop.example.com', 'evil.test'))
    expect(reply.status).toBe(400)
    expect(JSON.parse(reply.body).error.code).toBe('REDIRECT_NOT_ALLOWED')
    expect(ingest.events).toHaveLength(0)
  })

  it('never sends the user to an error page once the landing is verified: not durable, invalid or limited', async () => {
    const { ingest, hit } = setup({ rps: 1 })
    ingest.durable = false
    const down = await hit('click', CLICK)
    expect([down.status, down.headers!['X-Adgate-Event']]).toEqual([302, 'not-durable'])
    const limited = await hit('click', CLICK)
    expect([limited.status, limited.headers!['X-Adgate-Event']]).toEqual([302, 'rate-limited'])
    const { hit: hit2 } = setup()
    const invalid = await hit2('click', CLICK.replace('campaign_id=c-1&', ''))
    expect(invalid.status).toBe(302)
    expect(invalid.headers).toMatchObject({
      'X-Adgate-Event': 'invalid',
      'X-Adgate-Error': 'ALL_EVENTS_INVALID',
    })
  })
})

describe('the conversion postback', () => {
  const CONVERSION = 'conversion_id=v-1&click_id=k-1&campaign_id=c-1&conversion_type=PURCHASE'

  it('answers 200 (or 204 with r=204) once durable', async () => {
    const { ingest, hit } = setup()
    const ok = await hit('conversion', CONVERSION)
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toMatchObject({ accepted: 1 })
    expect((await hit('conversion', `${CONVERSION}&r=204`)).status).toBe(204)
    expect(ingest.events[0]).toMatchObject({ conversion_type: 'PURCHASE', source: 'anonymous' }) // as a POST
  })

  it('answers 503 when not durable and 400 when invalid: a server can retry', async () => {
    const { ingest, hit } = setup()
    expect((await hit('conversion', 'conversion_id=v-1')).status).toBe(400)
    ingest.durable = false
    const down = await hit('conversion', CONVERSION)
    expect(down.status).toBe(503)
    expect(down.headers!['Retry-After']).toBe('1')
  })

  it('needs an API key (header) when keys are configured, and is stamped with its name', async () => {
    const { ingest, hit } = setup({ keys: 'postback-secret-01' })
    expect((await hit('conversion', CONVERSION)).status).toBe(401)
    expect((await hit('conversion', CONVERSION, { apiKey: 'postback-secret-01' })).status).toBe(200)
    expect(ingest.events[0]!.source).toBe('net')
  })
})
