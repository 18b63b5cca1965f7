import type { ApiKey } from '../config/config.js'
import type { EventType } from '../events/catalog.js'
import { TokenBucket } from './rate-limit.js'

/** Why a request was not authenticated (rows of events/errors.ts). */
export type AuthError = 'MISSING_API_KEY' | 'UNKNOWN_API_KEY' | 'EVENT_TYPE_NOT_ALLOWED'

export interface Principal {
  readonly name: string
  readonly types: ReadonlySet<EventType> | null
  readonly bucket: TokenBucket | null
}

/** With no keys configured, everyone is this (authentication off; the start-up log warns). */
const ANONYMOUS: Principal = { name: 'anonymous', types: null, bucket: null }

/**
 * API keys from ADGATE_API_KEYS, presented as `X-API-Key: <secret>` or `Authorization: Bearer
 * <secret>`. Each key may send a set of event types, at a rate of its own (token bucket).
 */
export class Authenticator {
  private readonly bySecret = new Map<string, Principal>()

  constructor(keys: readonly ApiKey[] | undefined, defaultRps: number) {
    for (const k of keys ?? []) {
      const rps = k.rps || defaultRps
      this.bySecret.set(k.secret, {
        name: k.name,
        types: k.types,
        bucket: rps > 0 ? new TokenBucket(rps, rps) : null,
      })
    }
  }

  get enabled(): boolean {
    return this.bySecret.size > 0
  }

  /** The principal, or the error code to answer with. */
  check(apiKeyHeader: string, authorization: string, type: EventType): Principal | AuthError {
    const p = this.principal(apiKeyHeader, authorization)
    if (typeof p === 'string') return p
    return mayPost(p, type) ? p : 'EVENT_TYPE_NOT_ALLOWED'
  }

  /** Who is asking, before knowing the event type (the WebSocket checks types per message). */
  principal(apiKeyHeader: string, authorization: string): Principal | AuthError {
    if (!this.enabled) return ANONYMOUS
    let secret = apiKeyHeader
    if (secret === '' && authorization.startsWith('Bearer ')) secret = authorization.slice(7).trim()
    if (secret === '') return 'MISSING_API_KEY'
    return this.bySecret.get(secret) ?? 'UNKNOWN_API_KEY'
  }
}

export function mayPost(p: Principal, type: EventType): boolean {
  return p.types === null || p.types.has(type)
}
