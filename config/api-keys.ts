import { type EventType, isEventType } from '../events/catalog.js'
import { ConfigError, int } from './parsers.js'

// The API-key grammar of ADGATE_API_KEYS.
export interface ApiKey {
  readonly name: string
  readonly secret: string
  readonly types: ReadonlySet<EventType>
  /** Requests per second for this key; 0 = the ADGATE_RATE_LIMIT_RPS default. */
  readonly rps: number
}

/** name:secret:types[:rps], comma separated; types are bid|impression|click|conversion or *. */
export function parseApiKeys(raw: string): ApiKey[] {
  const keys: ApiKey[] = []
  const names = new Set<string>()
  const secrets = new Set<string>()
  for (const entry of raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const parts = entry.split(':')
    if (parts.length < 3 || parts.length > 4) {
      throw new ConfigError('each key must be name:secret:types[:rps], e.g. ssp-a:s3cret:bid|impression:500')
    }
    const [name, secret, typeList, rps] = parts as [string, string, string, string | undefined]
    if (!/^[\w.-]{1,64}$/.test(name))
      throw new ConfigError(`key name ${JSON.stringify(name)} must be 1-64 of [A-Za-z0-9_.-]`)
    if (secret.length < 8) throw new ConfigError(`the secret of key ${name} must be at least 8 characters`)
    if (names.has(name) || secrets.has(secret))
      throw new ConfigError(`key ${name} (or its secret) appears twice`)
    names.add(name)
    secrets.add(secret)
    const types = new Set<EventType>()
    for (const t of typeList === '*' ? ['bid', 'impression', 'click', 'conversion'] : typeList.split('|')) {
      if (!isEventType(t)) throw new ConfigError(`key ${name}: unknown event type ${JSON.stringify(t)}`)
      types.add(t)
    }
    keys.push({ name, secret, types, rps: rps === undefined ? 0 : int(1, 1_000_000)(rps) })
  }
  return keys
}
