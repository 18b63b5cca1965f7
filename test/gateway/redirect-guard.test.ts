import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { parseHostPatterns } from '../../config/config.js'
import { RedirectGuard, signClickQuery } from '../../gateway/redirect-guard.js'

const KEY = 'click-signing-key-0001'
const landing = 'https://shop.test/p?id=9'
const query = `click_id=k1&impression_id=i1&campaign_id=c1&url=${encodeURIComponent(landing)}`

describe('RedirectGuard', () => {
  const guard = new RedirectGuard(KEY, parseHostPatterns('ads.example.com, *.cdn.example.org'))
  const check = (q: string) => guard.check(q, new URLSearchParams(q).get('url'))

  it('redirects to a signed landing URL, whatever its host', () => {
    expect(check(signClickQuery(KEY, query))).toEqual({ ok: true, location: landing, by: 'signature' })
  })

  it('signs the query bytes as sent, as openssl dgst -hmac does', () => {
    const hex = createHmac('sha256', KEY).update(query).digest('hex')
    expect(signClickQuery(KEY, query)).toBe(`${query}&sig=${hex}`)
    expect(check(`${query}&sig=${hex.toUpperCase()}`).ok).toBe(true)
  })

  it('refuses a signature made with another key, a changed parameter or a moved sig', () => {
    const signed = signClickQuery(KEY, query)
    expect(check(signClickQuery('another-key-of-16+', query)).ok).toBe(false)
    expect(check(signed.replace('campaign_id=c1', 'campaign_id=c2')).ok).toBe(false)
    expect(check(signed.replace('url=https', 'url=http')).ok).toBe(false)
    const sig = signed.slice(signed.indexOf('&sig='))
    expect(check(`${query}${sig}&extra=1`).ok).toBe(false)
    expect(check(`${query}&sig=zz`).ok).toBe(false)
  })

  it('redirects unsigned only to allow-listed hosts (exact, or subdomains of *.)', () => {
    const at = (url: string) => check(`click_id=k&url=${encodeURIComponent(url)}`)
    expect(at('https://ads.example.com/x')).toMatchObject({ ok: true, by: 'allow-list' })
    expect(at('https://ADS.example.com/x').ok).toBe(true)
    expect(at('https://a.b.cdn.example.org/').ok).toBe(true)
    expect(at('https://cdn.example.org/').ok).toBe(false) // *.x is subdomains only
    expect(at('https://ads.example.com.evil.test/').ok).toBe(false)
    expect(at('https://evilads.example.com/').ok).toBe(false)
    expect(at('https://sub.ads.example.com/').ok).toBe(false)
  })

  it('never redirects to a non-http(s) URL, a relative one or one with credentials, even signed', () => {
    for (const url of [
      'javascript:alert(1)',
      'data:text/html,x',
      '//evil.test/',
      '/local',
      'https://ads.example.com@evil.test/',
    ]) {
      const q = `click_id=k&url=${encodeURIComponent(url)}`
      expect(check(signClickQuery(KEY, q)).ok, url).toBe(false)
    }
    expect(check('click_id=k').ok).toBe(false)
  })

  it('without a key a signed link is refused, saying why', () => {
    const keyless = new RedirectGuard(undefined, [])
    const q = signClickQuery(KEY, query)
    expect(keyless.check(q, landing)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('ADGATE_TRACKER_HMAC_KEY'),
    })
  })

  it('the Location is the parsed URL: header-breaking characters cannot get through', () => {
    const v = check(
      signClickQuery(KEY, `url=${encodeURIComponent('https://shop.test/a\r\nSet-Cookie: x=1')}`),
    )
    expect(v.ok && v.location).toBe('https://shop.test/aSet-Cookie:%20x=1')
  })
})
