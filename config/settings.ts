import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { parseApiKeys } from './api-keys.js'
import {
  bytes,
  ConfigError,
  DAY,
  duration,
  fraction,
  hmacKey,
  httpUrl,
  int,
  oneOf,
  parseAddressRanges,
  parseHostPatterns,
  readableFile,
  secret,
  setting,
  text,
} from './parsers.js'

const cpus = availableParallelism()

/**
 * Every setting adgate reads, in one table: environment variable, default, parser, and the line
 * `--help` prints. Read once at start-up, validated, frozen. A bad value stops the process with a
 * message naming the variable and what is allowed; unknown ADGATE_* variables and unknown keys in
 * the config file are errors too (a typo must not silently fall back to a default).
 */
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
  // Defaults: storage/duckdb.ts DUCKDB_DEFAULTS (why one thread).
  duckdbMemoryLimit: setting(
    'ADGATE_DUCKDB_MEMORY_LIMIT',
    '1GiB',
    "Embedded DuckDB storage: its buffer pool's limit (DuckDB's own default is 80 % of RAM); larger writes and queries spill to a temporary directory beside the file",
    bytes(16 << 20, 2 ** 40),
  ),
  duckdbThreads: setting(
    'ADGATE_DUCKDB_THREADS',
    '1',
    "Embedded DuckDB storage: its worker threads. 1 costs the correlator's writes the least CPU; more make large queries faster",
    int(1, 256),
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
  workers: setting(
    'ADGATE_WORKERS',
    String(Math.max(1, cpus - 1)),
    'Decoder worker threads (plus one for clients on probation for refused work, started with their first body)',
    int(1, 256),
  ),
  native: setting(
    'ADGATE_NATIVE',
    '1',
    'JSON bodies through the native transcoder when it is built (0: always the JS decoder)',
    oneOf('0', '1'),
  ),
  strictHttp: setting(
    'ADGATE_STRICT_HTTP',
    'on',
    'on: every request head is checked against RFC 9110/9112 before uWS reads it, so malformed or unusual requests (HTTP/1.0, odd header names, bad framing) get their status instead of no answer; off: uWS alone (faster for tiny requests; behind a proxy that normalizes requests)',
    oneOf('on', 'off'),
  ),
  trustedProxies: setting(
    'ADGATE_TRUSTED_PROXIES',
    undefined,
    'Comma-separated addresses or CIDR ranges of proxies in front of the gateway (10.0.0.0/8, ::1): from them, the client address is the last X-Forwarded-For address that is not one of them (trackers record it; keyless clients are charged refused work by it). Unset: X-Forwarded-For is ignored',
    parseAddressRanges,
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
  maxInFlight: setting(
    'ADGATE_MAX_IN_FLIGHT',
    '8',
    'Produce requests in flight per partition (at most 5 are used: a broker dedups the last 5 batches of a producer per partition)',
    int(1, 64),
  ),
  produceLingerMs: setting(
    'ADGATE_PRODUCE_LINGER_MS',
    '5',
    "How long at most a request's record batches may wait for other requests' to share their batch and Produce request: they go at once when the last request to their broker was answered and is this old (0: sent at once)",
    int(0, 1000),
  ),
  produceBatchBytes: setting(
    'ADGATE_PRODUCE_BATCH_BYTES',
    '1MiB',
    "Bound of one record batch merged from several requests' batches for a partition (also at most the topic's max.message.bytes and 16384 records)",
    bytes(1024, 64 * 2 ** 20),
  ),
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
    'SIGTERM: time to answer requests in flight, then to hand the spool to Kafka',
    int(0, 600_000),
  ),
  warmUpMs: setting(
    'ADGATE_WARMUP_MS',
    '10000',
    'Start-up: at most this long, every decode thread decodes built-in bodies of each type and encoding (thrown away) and Kafka connections and the producer id are made before /readyz says ready; requests are served meanwhile. 0: ready at once',
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
  requestCpuMs: setting(
    'ADGATE_REQUEST_CPU_MS',
    '500',
    "Decode time one request body may take (the decoder thread's CPU time, checked every 64 events): a body still decoding after it is refused with 400 BODY_TOO_COSTLY, its client charged for it",
    int(1, 600_000),
  ),
  refusedCpuMsPerS: setting(
    'ADGATE_REFUSED_CPU_MS_PER_S',
    '50',
    'Decode time per second a client (API key, or address without keys) may spend on bodies and events that are refused; beyond one second of it, its next bodies wait until it is back under (more than 4 waiting: 429), and for 30 s its bodies are decoded apart on a thread of their own. 0: no limit',
    int(0, 1_000_000),
  ),
  faultInjection: setting(
    'ADGATE_FAULT_INJECTION',
    'off',
    'on: POST /_faults/worker?mode=crash|hang and /_faults/kafka?mode=timeout|too-large|refused|unauthorized break the next decode task or Kafka delivery (fault tests only)',
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
  rawTables: setting(
    'ADGATE_RAW_TABLES',
    'on',
    'on: the correlator also writes every event it takes in to the raw tables (raw_bids, raw_bid_imps, raw_impressions, raw_clicks, raw_conversions: typed columns, exact floors, the whole event as JSON); off: joined facts and aggregates only',
    oneOf('on', 'off'),
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
    'An input partition read to its end (lag 0) and quiet for this long (wall clock) stops holding back the expiry of join state',
    duration(100, 30 * DAY),
  ),
} as const

export type Settings = typeof SETTINGS
export type Config = {
  readonly [K in keyof Settings]: Settings[K]['default'] extends string
    ? ReturnType<Settings[K]['parse']>
    : ReturnType<Settings[K]['parse']> | undefined
}
