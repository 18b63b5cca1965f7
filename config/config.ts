import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { type EventType, isEventType } from '../events/catalog.js'

/**
 * Every setting adgate reads, in one table: environment variable, default, parser, and the line
 * `--help` prints. Read once at start-up, validated, frozen. A bad value stops the process with a
 * message naming the variable and what is allowed; unknown ADGATE_* variables and unknown keys in
 * the config file are errors too (a typo must not silently fall back to a default).
 */
interface Setting<T, D extends string | undefined = string | undefined> {
  readonly env: string
  readonly doc: string
  readonly default: D
  readonly parse: (raw: string) => T
}

class ConfigError extends Error {}

function setting<T, D extends string | undefined>(
  env: string,
  def: D,
  doc: string,
  parse: (raw: string) => T,
): Setting<T, D> {
  return { env, default: def, doc, parse }
}

function int(min: number, max: number) {
  return (raw: string): number => {
    if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`must be a whole number from ${min} to ${max}`)
    const n = Number(raw)
    if (n < min || n > max) throw new ConfigError(`must be a whole number from ${min} to ${max}`)
    return n
  }
}

function bytes(min: number, max: number) {
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

function oneOf<T extends string>(...values: T[]) {
  return (raw: string): T => {
    if (!(values as string[]).includes(raw)) throw new ConfigError(`must be one of ${values.join(', ')}`)
    return raw as T
  }
}

const text = (raw: string) => raw

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

const cpus = availableParallelism()

export const SETTINGS = {
  port: setting('PORT', '8080', 'HTTP/WebSocket port of the gateway', int(0, 65535)),
  host: setting('HOST', '0.0.0.0', 'Address the gateway listens on', text),
  kafkaBrokers: setting(
    'KAFKA_BROKERS',
    undefined,
    'Comma-separated host:port list. Unset: `adgate all` starts the local broker (npm run kafka:start)',
    (raw) => {
      const list = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      if (list.length === 0 || !list.every((b) => /^[\w.-]+:\d+$/.test(b)))
        throw new ConfigError('must be host:port[,host:port…]')
      return list
    },
  ),
  kafkaClientId: setting('KAFKA_CLIENT_ID', 'adgate', 'Kafka client id', text),
  apiKeys: setting(
    'ADGATE_API_KEYS',
    undefined,
    'name:secret:types[:rps],… (types bid|impression|click|conversion or *). Unset: authentication is off',
    parseApiKeys,
  ),
  rateLimitRps: setting(
    'ADGATE_RATE_LIMIT_RPS',
    '0',
    'Default requests/s per API key (0 = unlimited)',
    int(0, 1_000_000),
  ),
  dataDir: setting(
    'ADGATE_DATA_DIR',
    './data',
    'Where local state lives (spool, embedded storage, local Kafka)',
    text,
  ),
  storage: setting('ADGATE_STORAGE', 'duckdb', 'Correlator storage: duckdb (embedded) or postgres://…', text),
  maxBodyBytes: setting(
    'ADGATE_MAX_BODY_BYTES',
    '5MiB',
    'Largest request body, before and after decompression',
    bytes(1024, 1 << 30),
  ),
  maxHeaderBytes: setting(
    'ADGATE_MAX_HEADER_BYTES',
    '16KiB',
    'Largest total of request header names and values',
    bytes(1024, 1 << 20),
  ),
  maxEvents: setting(
    'ADGATE_MAX_EVENTS',
    '10000',
    'Most events in one request or WebSocket message',
    int(1, 1_000_000),
  ),
  workers: setting('ADGATE_WORKERS', String(Math.max(1, cpus - 1)), 'Decoder worker threads', int(1, 256)),
  bodyTimeoutMs: setting(
    'ADGATE_BODY_TIMEOUT_MS',
    '10000',
    'A body must arrive within this (slow clients get 408)',
    int(100, 600_000),
  ),
  ackTimeoutMs: setting(
    'ADGATE_ACK_TIMEOUT_MS',
    '10000',
    'How long a request waits for Kafka to acknowledge its events before a 503',
    int(100, 600_000),
  ),
  lingerMs: setting('ADGATE_LINGER_MS', '2', 'How long the producer waits to fill a batch', int(0, 1000)),
  batchBytes: setting(
    'ADGATE_BATCH_BYTES',
    '1MiB',
    'Producer batch size that triggers a send',
    bytes(1024, 64 * 2 ** 20),
  ),
  maxInFlight: setting('ADGATE_MAX_IN_FLIGHT', '8', 'Concurrent produce requests to Kafka', int(1, 64)),
  maxPendingBytes: setting(
    'ADGATE_MAX_PENDING_BYTES',
    '256MiB',
    'Bytes waiting for Kafka before new requests get 503 (the memory bound)',
    bytes(1 << 20, 16 * 2 ** 30),
  ),
  wsMaxInFlight: setting(
    'ADGATE_WS_MAX_IN_FLIGHT',
    '64',
    'Unacknowledged messages per WebSocket',
    int(1, 100_000),
  ),
  shutdownTimeoutMs: setting(
    'ADGATE_SHUTDOWN_TIMEOUT_MS',
    '15000',
    'Graceful drain limit on SIGTERM',
    int(0, 600_000),
  ),
  tlsCert: setting(
    'ADGATE_TLS_CERT',
    undefined,
    'PEM certificate file; with ADGATE_TLS_KEY serves HTTPS/WSS',
    text,
  ),
  tlsKey: setting('ADGATE_TLS_KEY', undefined, 'PEM private key file', text),
  decodeTimeoutMs: setting(
    'ADGATE_DECODE_TIMEOUT_MS',
    '5000',
    'A decode task running longer is taken as hung: its worker is replaced, its requests get 503',
    int(100, 600_000),
  ),
  faultInjection: setting(
    'ADGATE_FAULT_INJECTION',
    'off',
    'on: POST /_faults/worker?mode=crash|hang and /_faults/kafka break the next decode task or Kafka delivery (fault tests only)',
    oneOf('off', 'on'),
  ),
  logLevel: setting(
    'LOG_LEVEL',
    'info',
    'trace, debug, info, warn, error, fatal or silent',
    oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'),
  ),
} as const

type Settings = typeof SETTINGS
export type Config = {
  readonly [K in keyof Settings]: Settings[K]['default'] extends string
    ? ReturnType<Settings[K]['parse']>
    : ReturnType<Settings[K]['parse']> | undefined
}

/** Variables that were renamed: the old name says what it became. */
const RENAMED: Readonly<Record<string, string>> = {
  ADGATE_PORT: 'PORT',
  ADGATE_KAFKA_BROKERS: 'KAFKA_BROKERS',
  ADGATE_LOG_LEVEL: 'LOG_LEVEL',
}

/** Other ADGATE_* variables that are not settings but are read elsewhere. */
const NOT_SETTINGS = new Set(['ADGATE_CONFIG'])

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const values: Record<string, string | undefined> = {}
  const file = env.ADGATE_CONFIG
  if (file) Object.assign(values, readConfigFile(file))
  const known = new Set(Object.values(SETTINGS).map((s) => s.env))
  for (const [name, value] of Object.entries(env)) {
    if (name in RENAMED) throw new ConfigError(`${name} was renamed to ${RENAMED[name]}`)
    if (name.startsWith('ADGATE_') && !known.has(name) && !NOT_SETTINGS.has(name)) {
      throw new ConfigError(`${name} is not a setting (see adgate --help)`)
    }
    if (known.has(name) && value !== undefined && value !== '') values[name] = value
  }
  const out: Record<string, unknown> = {}
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const raw = values[s.env] ?? s.default
    if (raw === undefined) continue
    try {
      out[key] = s.parse(raw)
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      throw new ConfigError(`${s.env}=${JSON.stringify(raw)}: ${err.message}`)
    }
  }
  if ((out.tlsCert === undefined) !== (out.tlsKey === undefined)) {
    throw new ConfigError('ADGATE_TLS_CERT and ADGATE_TLS_KEY must be set together')
  }
  return Object.freeze(out) as Config
}

function readConfigFile(path: string): Record<string, string> {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new ConfigError(`ADGATE_CONFIG=${path}: ${(err as Error).message}`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`ADGATE_CONFIG=${path}: must be a JSON object of VARIABLE: value`)
  }
  const known = new Set(Object.values(SETTINGS).map((s) => s.env))
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(parsed)) {
    if (k in RENAMED) throw new ConfigError(`ADGATE_CONFIG=${path}: ${k} was renamed to ${RENAMED[k]}`)
    if (!known.has(k)) throw new ConfigError(`ADGATE_CONFIG=${path}: unknown setting ${k}`)
    out[k] = String(v)
  }
  return out
}

export function isConfigError(err: unknown): err is Error {
  return err instanceof ConfigError
}

/** The settings table for --help. */
export function settingsHelp(): string {
  const rows = Object.values(SETTINGS).map(
    (s) => `  ${s.env.padEnd(28)} ${s.doc}${s.default !== undefined ? ` [${s.default}]` : ''}`,
  )
  return `Environment (or a JSON file named by ADGATE_CONFIG):\n${rows.join('\n')}\n`
}
