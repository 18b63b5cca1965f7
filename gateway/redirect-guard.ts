import { createHmac, timingSafeEqual } from 'node:crypto'

export type RedirectVerdict =
  | { readonly ok: true; readonly location: string; readonly by: 'signature' | 'allow-list' }
  | { readonly ok: false; readonly detail: string }

const SIG = '&sig='

/**
 * The click tracker redirects only to landing URLs it can vouch for, never openly: the URL is
 * signed by whoever built the click link (ADGATE_TRACKER_HMAC_KEY), or its host is on
 * ADGATE_REDIRECT_ALLOWLIST. The signature binds the whole query, not only `url`, so a signed
 * link also authenticates its click ids and cannot be re-pointed or re-attributed:
 *
 *   sig = hex(HMAC-SHA256(key, <the query string exactly as sent, up to "&sig=">)), sig last.
 *
 * Signing the bytes as sent (rather than a canonical re-encoding) lets a shell script sign with
 * `openssl dgst -hmac`. Only http(s) URLs without credentials qualify even when signed.
 */
export class RedirectGuard {
  private readonly key: Buffer | null

  constructor(
    key: string | undefined,
    private readonly hosts: readonly string[],
  ) {
    this.key = key === undefined ? null : Buffer.from(key)
  }

  /** `query` is the raw query string (without '?'); `url` its decoded `url` parameter. */
  check(query: string, url: string | null): RedirectVerdict {
    if (url === null || url === '')
      return { ok: false, detail: 'the url parameter (the landing page) is required' }
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return { ok: false, detail: 'url is not an absolute URL' }
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
      return { ok: false, detail: `url must be http or https, got ${parsed.protocol}` }
    if (parsed.username !== '' || parsed.password !== '')
      return { ok: false, detail: 'url must not carry credentials' }
    const at = query.lastIndexOf(SIG)
    if (at >= 0) {
      if (this.key === null)
        return { ok: false, detail: 'url is signed but no ADGATE_TRACKER_HMAC_KEY is configured' }
      if (!this.signatureMatches(query.slice(0, at), query.slice(at + SIG.length)))
        return {
          ok: false,
          detail: 'sig does not match (HMAC-SHA256 of the query before &sig=, hex, sig last)',
        }
      return { ok: true, location: parsed.href, by: 'signature' }
    }
    if (this.allows(parsed.hostname)) return { ok: true, location: parsed.href, by: 'allow-list' }
    return {
      ok: false,
      detail: `url is not signed and ${parsed.hostname} is not on ADGATE_REDIRECT_ALLOWLIST`,
    }
  }

  private signatureMatches(signed: string, sig: string): boolean {
    if (!/^[0-9a-fA-F]{64}$/.test(sig)) return false
    const expected = createHmac('sha256', this.key!).update(signed).digest()
    return timingSafeEqual(expected, Buffer.from(sig, 'hex'))
  }

  private allows(hostname: string): boolean {
    const host = hostname.toLowerCase()
    for (const pattern of this.hosts) {
      if (pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) : host === pattern) return true
    }
    return false
  }
}

/** The signature a click link needs (for tests and link builders; the README shows the shell form). */
export function signClickQuery(key: string, query: string): string {
  return `${query}${SIG}${createHmac('sha256', key).update(query).digest('hex')}`
}
