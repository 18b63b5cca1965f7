import { accessSync, constants, readFileSync } from 'node:fs'
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
  /** Never echoed (config errors print the variable name only). */
  readonly secret?: boolean
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

/** A file that must exist and be readable at start-up (its content is read where it is used). */
function readableFile(raw: string): string {
  try {
    accessSync(raw, constants.R_OK)
  } catch {
    throw new ConfigError('must name a readable file')
  }
  return raw
}

/** A secret: its value is never echoed, in errors or anywhere else. */
function secret(env: string, doc: string, parse: (raw: string) => string = text): Setting<string, undefined> {
  return { env, default: undefined, doc, parse, secret: true }
}

/** A share such as 0.95 (or 95%). */
function fraction(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(%)?$/.exec(raw.trim())
  const n = m ? Number(m[1]) / (m[2] ? 100 : 1) : Number.NaN
  if (!(n >= 0 && n <= 1)) throw new ConfigError('must be a share from 0 to 1 (or 0% to 100%)')
  return n
}

const DAY = 86_400_000
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY }

/** 500ms, 30s, 30m, 7d, or plain milliseconds. */
function duration(min: number, max: number) {
  return (raw: string): number => {
    const m = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(raw.trim())
    if (!m) throw new ConfigError('must be a duration such as 1500, 500ms, 30s, 30m, 2h or 7d')
    const n = Number(m[1]) * UNIT_MS[m[2] ?? 'ms']!
    if (n < min || n > max) throw new ConfigError(`must be a duration from ${min} ms to ${max} ms`)
    return n
  }
}

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

/** An HMAC key: long enough that guessing it is not the easy way in. */
function hmacKey(raw: string): string {
  if (raw.length < 16) throw new ConfigError('must be at least 16 characters')
  return raw
}

function httpUrl(raw: string): URL {
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

const cpus = availableParallelism()

export const SETTINGS = {
  port: setting('PORT', '8080', 'HTTP/WebSocket port of the gateway', int(0, 65535)),
  host: setting('HOST', '0.0.0.0', 'Address the gateway listens on', text),
  kafkaBrokers: setting(
    'KAFKA_BROKERS',
    undefined,
    'Comma-separated host:port list. Unset: `adgate all` runs embedded, without Kafka (events durable in the spool); `adgate gateway` refuses to start',
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
  topicPartitions: setting(
    'ADGATE_TOPIC_PARTITIONS',
    '4',
    'Partitions of the topics adgate creates (and assumes while Kafka metadata is unknown)',
    int(1, 10_000),
  ),
  kafkaClientId: setting('KAFKA_CLIENT_ID', 'adgate', 'Kafka client id', text),
  kafkaSecurityProtocol: setting(
    'KAFKA_SECURITY_PROTOCOL',
    'PLAINTEXT',
    'How every Kafka connection is secured: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL',
    oneOf('PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'),
  ),
  kafkaSaslMechanism: setting(
    'KAFKA_SASL_MECHANISM',
    undefined,
    'With SASL_*: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER',
    oneOf('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'),
  ),
  kafkaSaslUsername: setting('KAFKA_SASL_USERNAME', undefined, 'SASL user (PLAIN, SCRAM)', text),
  kafkaSaslPassword: secret(
    'KAFKA_SASL_PASSWORD',
    'SASL password (PLAIN, SCRAM); prefer KAFKA_SASL_PASSWORD_FILE',
  ),
  kafkaSaslPasswordFile: setting(
    'KAFKA_SASL_PASSWORD_FILE',
    undefined,
    'File holding the SASL password (read at each authentication, so it can be rotated)',
    readableFile,
  ),
  kafkaSaslOauthbearerTokenFile: setting(
    'KAFKA_SASL_OAUTHBEARER_TOKEN_FILE',
    undefined,
    'OAUTHBEARER: file holding the token (re-read when it changes)',
    readableFile,
  ),
  kafkaSaslOauthbearerTokenCommand: setting(
    'KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND',
    undefined,
    'OAUTHBEARER: shell command printing a token (run again before the token expires)',
    text,
  ),
  kafkaSslCaFile: setting(
    'KAFKA_SSL_CA_FILE',
    undefined,
    'PEM CA bundle the brokers are verified against (unset: the system CAs); hostnames are always verified',
    readableFile,
  ),
  kafkaSslCertFile: setting(
    'KAFKA_SSL_CERT_FILE',
    undefined,
    'PEM client certificate for mTLS (with KAFKA_SSL_KEY_FILE)',
    readableFile,
  ),
  kafkaSslKeyFile: setting('KAFKA_SSL_KEY_FILE', undefined, 'PEM client private key for mTLS', readableFile),
  topicReplication: setting(
    'ADGATE_TOPIC_REPLICATION',
    undefined,
    'Replication factor of the topics adgate creates (unset: min(3, brokers))',
    int(1, 32),
  ),
  topicMinIsr: setting(
    'ADGATE_TOPIC_MIN_ISR',
    undefined,
    'min.insync.replicas of the topics adgate creates (unset: replication factor - 1, at least 1)',
    int(1, 32),
  ),
  topicRetentionMs: setting(
    'ADGATE_TOPIC_RETENTION_MS',
    undefined,
    'retention.ms of the topics adgate creates (unset: the broker default)',
    int(60_000, Number.MAX_SAFE_INTEGER),
  ),
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
  storage: setting(
    'ADGATE_STORAGE',
    'duckdb',
    'Correlator storage: duckdb (embedded), duckdb:/file, postgres://… or parquet[:/dir]',
    text,
  ),
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
  native: setting(
    'ADGATE_NATIVE',
    '1',
    'JSON bodies through the native transcoder when it is built (0: always the JS decoder)',
    oneOf('0', '1'),
  ),
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
  lingerMs: setting(
    'ADGATE_LINGER_MS',
    '2',
    'While every decode worker is busy, how long new request bodies wait to join the next decode task',
    int(0, 1000),
  ),
  batchBytes: setting(
    'ADGATE_BATCH_BYTES',
    '1MiB',
    'Request bodies of this many bytes close a decode task at once (a task becomes one Kafka batch per partition)',
    bytes(1024, 64 * 2 ** 20),
  ),
  maxInFlight: setting('ADGATE_MAX_IN_FLIGHT', '8', 'Concurrent produce requests to Kafka', int(1, 64)),
  maxPendingBytes: setting(
    'ADGATE_MAX_PENDING_BYTES',
    '256MiB',
    'Bytes waiting for Kafka before new requests get 503 (the memory bound)',
    bytes(1 << 20, 16 * 2 ** 30),
  ),
  spoolMaxBytes: setting(
    'ADGATE_SPOOL_MAX_BYTES',
    '1GiB',
    'Local spool size (under ADGATE_DATA_DIR/spool) for when Kafka is down or slow; 0 = no spool (503 instead)',
    (raw) => (raw.trim() === '0' ? 0 : bytes(1 << 20, 2 ** 40)(raw)),
  ),
  spoolAfterMs: setting(
    'ADGATE_SPOOL_AFTER_MS',
    '2000',
    'How long a batch waits for Kafka before it is made durable in the spool instead',
    int(10, 600_000),
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
  trackerHmacKey: secret(
    'ADGATE_TRACKER_HMAC_KEY',
    'Secret that signs click-tracker landing URLs (sig = hex HMAC-SHA256 of the query before &sig=); at least 16 characters',
    hmacKey,
  ),
  trackerHmacKeyFile: setting(
    'ADGATE_TRACKER_HMAC_KEY_FILE',
    undefined,
    'File holding ADGATE_TRACKER_HMAC_KEY (read once at start-up; surrounding whitespace ignored)',
    (raw) => hmacKey(readFileSync(readableFile(raw), 'utf8').trim()),
  ),
  redirectAllowlist: setting(
    'ADGATE_REDIRECT_ALLOWLIST',
    undefined,
    'Comma-separated hosts the click tracker may redirect to unsigned; *.example.com matches its subdomains',
    parseHostPatterns,
  ),
  trackerRateLimitRps: setting(
    'ADGATE_TRACKER_RATE_LIMIT_RPS',
    '0',
    'Requests/s over all pixel and click trackers (unauthenticated; 0 = unlimited)',
    int(0, 10_000_000),
  ),
  schemaRegistryUrl: setting(
    'ADGATE_SCHEMA_REGISTRY_URL',
    undefined,
    'Confluent-compatible schema registry (Confluent, Apicurio …/apis/ccompat/v7): subjects are registered there at start-up and its ids written. Unset: the ids of schemas/registry.json',
    httpUrl,
  ),
  schemaRegistryUser: setting(
    'ADGATE_SCHEMA_REGISTRY_USER',
    undefined,
    'Basic-auth user for the schema registry',
    text,
  ),
  schemaRegistryPassword: secret(
    'ADGATE_SCHEMA_REGISTRY_PASSWORD',
    'Basic-auth password for the schema registry; prefer ADGATE_SCHEMA_REGISTRY_PASSWORD_FILE',
  ),
  schemaRegistryPasswordFile: setting(
    'ADGATE_SCHEMA_REGISTRY_PASSWORD_FILE',
    undefined,
    'File holding the schema registry password (read at start-up)',
    readableFile,
  ),
  schemaRegistryCaFile: setting(
    'ADGATE_SCHEMA_REGISTRY_CA_FILE',
    undefined,
    'PEM CA bundle an https schema registry is verified against (unset: the system CAs)',
    readableFile,
  ),
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
  correlatorPort: setting(
    'ADGATE_CORRELATOR_PORT',
    '8081',
    'HTTP port of the correlator: GET /v1/campaigns/:id/stats, /v1/stats, /metrics, /healthz',
    int(0, 65535),
  ),
  correlatorGroup: setting(
    'ADGATE_CORRELATOR_GROUP',
    'adgate-correlator',
    'Kafka consumer group of the correlator instances (they split the partitions)',
    text,
  ),
  correlatorRekey: setting(
    'ADGATE_CORRELATOR_REKEY',
    'kafka',
    'kafka: stages exchange re-keyed records through adgate.correlator.* topics (several instances); local: in-process (one instance owns every partition)',
    oneOf('kafka', 'local'),
  ),
  impressionWindow: setting(
    'ADGATE_IMPRESSION_WINDOW',
    '10m',
    'An impression joins its bid request when it comes at most this long after it',
    duration(0, 30 * DAY),
  ),
  clickWindow: setting(
    'ADGATE_CLICK_WINDOW',
    '30m',
    'A click joins its impression when it comes at most this long after it',
    duration(0, 30 * DAY),
  ),
  conversionWindow: setting(
    'ADGATE_CONVERSION_WINDOW',
    '7d',
    'A conversion is attributed to its click when it comes at most this long after it',
    duration(0, 90 * DAY),
  ),
  grace: setting(
    'ADGATE_GRACE',
    '5m',
    'How far behind the newest event of its partition an event may be; older ones are late (kept aside, not counted)',
    duration(0, 30 * DAY),
  ),
  minClickDelay: setting(
    'ADGATE_MIN_CLICK_DELAY',
    '1s',
    'Clicks sooner than this after their impression are flagged too_soon (invalid)',
    duration(0, DAY),
  ),
  botUserAgents: setting(
    'ADGATE_BOT_USER_AGENTS',
    'bot,crawler,spider,python-requests,curl/,wget/,headlesschrome,phantomjs,go-http-client,java/,okhttp',
    'Comma-separated user-agent substrings (case-insensitive) whose clicks are flagged as bot / data-centre traffic',
    (raw) =>
      raw
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean),
  ),
  checkpointInterval: setting(
    'ADGATE_CHECKPOINT_INTERVAL',
    '5s',
    'How often the correlator checkpoints its join state with its positions (bounds replay after a crash)',
    duration(0, DAY),
  ),
  qualityRules: setting(
    'ADGATE_QUALITY_RULES',
    'default',
    'Data-quality rules file (YAML or JSON), re-read when it changes; default: the shipped quality/default-rules.yaml; off: no rules',
    text,
  ),
  qualityHealthy: setting(
    'ADGATE_QUALITY_HEALTHY',
    '0.95',
    'Quality score (share of events passing every rule) at or above which a source or campaign is healthy',
    fraction,
  ),
  qualityMinimum: setting(
    'ADGATE_QUALITY_MINIMUM',
    '0.80',
    'Quality score below which a source is alerted on (AdgateSourceQualityLow)',
    fraction,
  ),
  anomalies: setting(
    'ADGATE_ANOMALIES',
    'on',
    'on: the correlator flags anomalies (campaign and source baselines, source clustering) into the anomalies table; off: no detection',
    oneOf('on', 'off'),
  ),
  anomalyBucket: setting(
    'ADGATE_ANOMALY_BUCKET',
    '1m',
    'Bucket of ingest time the anomaly detector judges at once (longer: steadier baselines for small traffic, later flags)',
    duration(10_000, DAY),
  ),
  idleTimeout: setting(
    'ADGATE_IDLE_TIMEOUT',
    '60s',
    'An input partition quiet for this long (wall clock) stops holding back the expiry of join state',
    duration(100, 30 * DAY),
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
      throw new ConfigError(`${s.env}${s.secret ? '' : `=${JSON.stringify(raw)}`}: ${err.message}`)
    }
  }
  checkKafkaSecurity(out as Partial<Config>)
  if ((out.qualityMinimum as number) > (out.qualityHealthy as number)) {
    throw new ConfigError('ADGATE_QUALITY_MINIMUM must not be above ADGATE_QUALITY_HEALTHY')
  }
  if (out.trackerHmacKey !== undefined && out.trackerHmacKeyFile !== undefined) {
    throw new ConfigError('set ADGATE_TRACKER_HMAC_KEY or ADGATE_TRACKER_HMAC_KEY_FILE, not both')
  }
  const registryPassword = out.schemaRegistryPassword ?? out.schemaRegistryPasswordFile
  if (out.schemaRegistryPassword !== undefined && out.schemaRegistryPasswordFile !== undefined) {
    throw new ConfigError(
      'set ADGATE_SCHEMA_REGISTRY_PASSWORD or ADGATE_SCHEMA_REGISTRY_PASSWORD_FILE, not both',
    )
  }
  if ((out.schemaRegistryUser === undefined) !== (registryPassword === undefined)) {
    throw new ConfigError('ADGATE_SCHEMA_REGISTRY_USER and a password must be set together')
  }
  if (out.schemaRegistryUrl === undefined && (registryPassword ?? out.schemaRegistryCaFile) !== undefined) {
    throw new ConfigError(
      'ADGATE_SCHEMA_REGISTRY_USER / _PASSWORD / _CA_FILE need ADGATE_SCHEMA_REGISTRY_URL',
    )
  }
  if ((out.tlsCert === undefined) !== (out.tlsKey === undefined)) {
    throw new ConfigError('ADGATE_TLS_CERT and ADGATE_TLS_KEY must be set together')
  }
  return Object.freeze(out) as Config
}

/** The Kafka security settings that only make sense together. */
function checkKafkaSecurity(c: Partial<Config>): void {
  const sasl = c.kafkaSecurityProtocol === 'SASL_SSL' || c.kafkaSecurityProtocol === 'SASL_PLAINTEXT'
  const tls = c.kafkaSecurityProtocol === 'SSL' || c.kafkaSecurityProtocol === 'SASL_SSL'
  const needs = (cond: boolean, message: string) => {
    if (!cond) throw new ConfigError(message)
  }
  needs(
    sasl === (c.kafkaSaslMechanism !== undefined),
    sasl
      ? `KAFKA_SASL_MECHANISM must be set with KAFKA_SECURITY_PROTOCOL=${c.kafkaSecurityProtocol} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)`
      : 'KAFKA_SASL_MECHANISM needs KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT',
  )
  const password = c.kafkaSaslPassword !== undefined
  const passwordFile = c.kafkaSaslPasswordFile !== undefined
  const tokenFile = c.kafkaSaslOauthbearerTokenFile !== undefined
  const tokenCommand = c.kafkaSaslOauthbearerTokenCommand !== undefined
  needs(!(password && passwordFile), 'set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both')
  needs(
    !(tokenFile && tokenCommand),
    'set KAFKA_SASL_OAUTHBEARER_TOKEN_FILE or KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND, not both',
  )
  if (c.kafkaSaslMechanism === 'OAUTHBEARER') {
    needs(
      tokenFile || tokenCommand,
      'KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_SASL_OAUTHBEARER_TOKEN_FILE or KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND',
    )
    needs(
      c.kafkaSaslUsername === undefined && !password && !passwordFile,
      'KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE) are not used with OAUTHBEARER',
    )
  } else if (c.kafkaSaslMechanism !== undefined) {
    needs(
      c.kafkaSaslUsername !== undefined && (password || passwordFile),
      `KAFKA_SASL_MECHANISM=${c.kafkaSaslMechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE`,
    )
    needs(
      !tokenFile && !tokenCommand,
      'KAFKA_SASL_OAUTHBEARER_TOKEN_* are only used with KAFKA_SASL_MECHANISM=OAUTHBEARER',
    )
  } else {
    needs(
      c.kafkaSaslUsername === undefined && !password && !passwordFile && !tokenFile && !tokenCommand,
      'KAFKA_SASL_* credentials need KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT',
    )
  }
  needs(
    tls ||
      (c.kafkaSslCaFile === undefined && c.kafkaSslCertFile === undefined && c.kafkaSslKeyFile === undefined),
    'KAFKA_SSL_* files need KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL',
  )
  needs(
    (c.kafkaSslCertFile === undefined) === (c.kafkaSslKeyFile === undefined),
    'KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE must be set together (mTLS)',
  )
  needs(
    c.topicReplication === undefined || c.topicMinIsr === undefined || c.topicMinIsr <= c.topicReplication,
    'ADGATE_TOPIC_MIN_ISR must not be above ADGATE_TOPIC_REPLICATION',
  )
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
