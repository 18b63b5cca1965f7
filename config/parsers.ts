import { accessSync, constants } from 'node:fs'
import { isIP } from 'node:net'

/**
 * The value parsers of the settings table (config/settings.ts): each takes the raw text of a
 * variable and returns its value or throws a ConfigError saying what is allowed.
 */
export interface Setting<T, D extends string | undefined = string | undefined> {
  readonly env: string
  readonly doc: string
  readonly default: D
  readonly parse: (raw: string) => T
  /** Never echoed (config errors print the variable name only). */
  readonly secret?: boolean
}

export class ConfigError extends Error {}

export function setting<T, D extends string | undefined>(
  env: string,
  def: D,
  doc: string,
  parse: (raw: string) => T,
): Setting<T, D> {
  return { env, default: def, doc, parse }
}

export function int(min: number, max: number) {
  return (raw: string): number => {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`must be a whole number from ${min} to ${max}`)
    const n = Number(raw)
    if (n < min || n > max) throw new ConfigError(`must be a whole number from ${min} to ${max}`)
    return n
  }
}

export function bytes(min: number, max: number) {
  return (raw: string): number => {
    const m = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?$/i.exec(raw.trim())
    if (!m) throw new ConfigError('must be a size such as 1048576, 512KiB or 5MiB')
    const unit = (m[2] ?? 'b').toLowerCase()
    const mult = unit.startsWith('g')
      ? 1 << 30
      : unit.startsWith('m')
        ? 1 << 20
        : unit.startsWith('k')
          ? 1024
          : 1
    const n = Number(m[1]) * mult
    if (n < min || n > max) throw new ConfigError(`must be between ${min} and ${max} bytes`)
    return n
  }
}

export function oneOf<T extends string>(...values: T[]) {
  return (raw: string): T => {
    if (!(values as string[]).includes(raw)) throw new ConfigError(`must be one of ${values.join(', ')}`)
    return raw as T
  }
}

export const text = (raw: string) => raw

/** A file that must exist and be readable at start-up (its content is read where it is used). */
export function readableFile(raw: string): string {
  try {
    accessSync(raw, constants.R_OK)
  } catch {
    throw new ConfigError('must name a readable file')
  }
  return raw
}

/** A secret: its value is never echoed, in errors or anywhere else. */
export function secret(
  env: string,
  doc: string,
  parse: (raw: string) => string = text,
): Setting<string, undefined> {
  return { env, default: undefined, doc, parse, secret: true }
}

/** A share such as 0.95 (or 95%). */
export function fraction(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(%)?$/.exec(raw.trim())
  const n = m ? Number(m[1]) / (m[2] ? 100 : 1) : Number.NaN
  if (!(n >= 0 && n <= 1)) throw new ConfigError('must be a share from 0 to 1 (or 0% to 100%)')
  return n
}

export const DAY = 86_400_000
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY }

/** 500ms, 30s, 30m, 7d, or plain milliseconds. */
export function duration(min: number, max: number) {
  return (raw: string): number => {
    const m = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(raw.trim())
    if (!m) throw new ConfigError('must be a duration such as 1500, 500ms, 30s, 30m, 2h or 7d')
    const n = Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!
    if (n < min || n > max) throw new ConfigError(`must be a duration from ${min} ms to ${max} ms`)
    return n
  }
}

/** An HMAC key: long enough that guessing it is not the easy way in. */
export function hmacKey(raw: string): string {
  if (raw.length < 16) throw new ConfigError('must be at least 16 characters')
  return raw
}

export function httpUrl(raw: string): URL {
  let url: URL | undefined
  try {
    url = new URL(raw.trim())
  } catch {}
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:')
    throw new ConfigError('must be an http:// or https:// URL')
  return url
}

/** example.com or *.example.com, comma separated, lower-cased (host names are case-insensitive). */
export function parseHostPatterns(raw: string): string[] {
  const hosts = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
  for (const h of hosts) {
    if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(h))
      throw new ConfigError(`${JSON.stringify(h)} is not a host name or *.host pattern`)
  }
  return hosts
}

/** Comma-separated IP addresses and CIDR ranges (IPv4 or IPv6), e.g. `10.0.0.0/8, ::1`. */
export function parseAddressRanges(raw: string): string[] {
  const ranges = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const r of ranges) {
    const [address = '', prefix, extra] = r.split('/')
    const family = isIP(address)
    const bits = family === 4 ? 32 : 128
    const ok =
      family !== 0 &&
      extra === undefined &&
      (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits))
    if (!ok)
      throw new ConfigError(`${JSON.stringify(r)} is not an IP address or CIDR range (10.0.0.0/8, fd00::/8)`)
  }
  return ranges
}
