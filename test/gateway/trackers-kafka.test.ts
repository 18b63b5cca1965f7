// The trackers against a real gateway and the real broker: events read back from Kafka,
// signatures and the allow-list, no cookies, no-cache, HEAD, and what a failed delivery answers.
import { randomUUID } from 'node:crypto'
import { describe, expect, inject, it } from 'vitest'
import { EVENT_INFO } from '../../events/catalog.js'
import { signClickQuery } from '../../gateway/redirect-guard.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { gatewayForBlock } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')
const KEY = 'tracker-hmac-key-for-tests'
const TOPICS = [EVENT_INFO.impression.topic, EVENT_INFO.click.topic, EVENT_INFO.conversion.topic]

describe.skipIf(brokers.length === 0)('trackers against Kafka', () => {
  const run = randomUUID().slice(0, 8)
  const get = (path: string, init: RequestInit = {}) =>
    fetch(`${gw.url}${path}`, { redirect: 'manual', ...init })

  const gw = gatewayForBlock(brokers, {
    ADGATE_TRACKER_HMAC_KEY: KEY,
    ADGATE_REDIRECT_ALLOWLIST: 'shop.example.com',
    ADGATE_FAULT_INJECTION: 'on',
    // This test's client is the proxy: its X-Forwarded-For names the client.
    ADGATE_TRUSTED_PROXIES: '127.0.0.1',
    // No spool: a broken delivery is "not durable" rather than spooled.
    ADGATE_SPOOL_MAX_BYTES: '0',
  })

  async function readBack(
    from: Awaited<ReturnType<typeof endOffsets>>,
    ids: string[],
  ): Promise<ReadRecord[]> {
    const mine = (r: ReadRecord) => ids.includes(String(r.value.event_id))
    const records = await readFrom(brokers, from, (all) => all.filter(mine).length >= ids.length)
    return records.filter(mine)
  }

  it('pixel, click and conversion hits are in Kafka, as the schema has them, once answered', async () => {
    const from = await endOffsets(brokers, TOPICS)
    const ua = 'Mozilla/5.0 (tracker test)'
    const pixel = await get(
      `/v1/t/impression.gif?event_id=imp-${run}&impression_id=i-${run}&auction_id=a-${run}&campaign_id=c-${run}&cost_micros=2500&device_type=MOBILE`,
      { headers: { 'user-agent': ua } },
    )
    expect(pixel.status).toBe(200)
    expect(pixel.headers.get('content-type')).toBe('image/gif')
    expect(pixel.headers.get('cache-control')).toContain('no-store')
    expect(pixel.headers.get('x-adgate-event')).toBe('durable')
    expect(pixel.headers.get('set-cookie')).toBeNull()
    const gif = Buffer.from(await pixel.arrayBuffer())
    expect([gif.length, gif.subarray(0, 6).toString()]).toEqual([43, 'GIF89a'])

    const landing = 'https://landing.test/offer?utm_source=adgate'
    const clickQuery = signClickQuery(
      KEY,
      `event_id=clk-${run}&click_id=k-${run}&impression_id=i-${run}&campaign_id=c-${run}&url=${encodeURIComponent(landing)}`,
    )
    const click = await get(`/v1/t/click?${clickQuery}`)
    expect(click.status).toBe(302)
    expect(click.headers.get('location')).toBe(landing)
    expect(click.headers.get('set-cookie')).toBeNull()

    const conversion = await get(
      `/v1/t/conversion?event_id=cnv-${run}&conversion_id=v-${run}&click_id=k-${run}&campaign_id=c-${run}&value_micros=990000&currency=EUR&r=204`,
    )
    expect(conversion.status).toBe(204)

    const records = await readBack(from, [`imp-${run}`, `clk-${run}`, `cnv-${run}`])
    const by = (topic: string) => records.find((r) => r.topic === topic)!
    expect(by(EVENT_INFO.impression.topic).value).toMatchObject({
      impression_id: `i-${run}`,
      cost_micros: 2500,
      device_type: 'MOBILE',
      user_agent: ua,
      ip: expect.stringMatching(/127\.0\.0\.1/),
      source: 'tracker',
    })
    expect(by(EVENT_INFO.impression.topic).key).toBe(`a-${run}`)
    expect(by(EVENT_INFO.click.topic).value).toMatchObject({ click_id: `k-${run}`, landing_url: landing })
    expect(by(EVENT_INFO.conversion.topic).value).toMatchObject({ value_micros: 990000, currency: 'EUR' })
  })

  it('issue 15: from a trusted proxy, the recorded address is the last forwarded one that is not a proxy', async () => {
    const from = await endOffsets(brokers, TOPICS)
    const pixel = await get(
      `/v1/t/impression.gif?event_id=xff-${run}&impression_id=x-${run}&auction_id=ax-${run}&campaign_id=c-${run}&cost_micros=1000`,
      // The leftmost entry is whatever the client wrote; the proxy appended the address it saw.
      { headers: { 'x-forwarded-for': '10.66.66.66, 198.51.100.23' } },
    )
    expect(pixel.status).toBe(200)
    const [record] = await readBack(from, [`xff-${run}`])
    expect(record!.value).toMatchObject({ impression_id: `x-${run}`, ip: '198.51.100.23' })
  })

  it('refuses unverified landing URLs with 400 and redirects allow-listed ones unsigned', async () => {
    const base = `click_id=k2-${run}&impression_id=i-${run}&campaign_id=c-${run}`
    const evil = await get(`/v1/t/click?${base}&url=${encodeURIComponent('https://evil.test/')}`)
    expect(evil.status).toBe(400)
    expect(((await evil.json()) as { error: { code: string } }).error.code).toBe('REDIRECT_NOT_ALLOWED')
    const forged = await get(
      `/v1/t/click?${base}&url=${encodeURIComponent('https://evil.test/')}&sig=${'0'.repeat(64)}`,
    )
    expect(forged.status).toBe(400)
    const listed = await get(`/v1/t/click?${base}&url=${encodeURIComponent('https://shop.example.com/x')}`)
    expect([listed.status, listed.headers.get('location')]).toEqual([302, 'https://shop.example.com/x'])
  })

  it('HEAD on the pixel answers its headers and records nothing; other methods get 405', async () => {
    const head = await get('/v1/t/impression.gif?impression_id=x', { method: 'HEAD' })
    expect([head.status, head.headers.get('content-type')]).toEqual([200, 'image/gif'])
    const post = await get('/v1/t/impression.gif', { method: 'POST', body: 'x' })
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD'])
  })

  it('when Kafka fails the delivery: the pixel still answers its GIF and the click still redirects, both saying so', async () => {
    const arm = async () =>
      expect((await fetch(`${gw.url}/_faults/kafka`, { method: 'POST' })).status).toBe(200)
    await arm()
    const pixel = await get(
      `/v1/t/impression.gif?impression_id=f-${run}&auction_id=a-${run}&campaign_id=c-${run}&cost_micros=1`,
    )
    expect([pixel.status, pixel.headers.get('content-type'), pixel.headers.get('x-adgate-event')]).toEqual([
      200,
      'image/gif',
      'not-durable',
    ])
    await arm()
    const click = await get(
      `/v1/t/click?click_id=f-${run}&impression_id=i-${run}&campaign_id=c-${run}&url=${encodeURIComponent('https://shop.example.com/y')}`,
    )
    expect([click.status, click.headers.get('location'), click.headers.get('x-adgate-event')]).toEqual([
      302,
      'https://shop.example.com/y',
      'not-durable',
    ])
    await arm()
    const conversion = await get(`/v1/t/conversion?conversion_id=f-${run}&click_id=k&campaign_id=c`)
    expect(conversion.status).toBe(503)
  })
})
