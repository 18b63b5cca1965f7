import { readFileSync } from 'node:fs'
import { ConfigError, type Setting } from './parsers.js'
import { type Config, SETTINGS } from './settings.js'

// Loading: the environment (or the ADGATE_CONFIG file) read once at start-up, each value parsed by
// its setting, the settings that only make sense together checked, the result frozen.
// The table is config/settings.ts, its parsers config/parsers.ts, the API-key grammar
// config/api-keys.ts and the --help text config/help.ts; this module is what the rest imports.
export type { ApiKey } from './api-keys.js'
export { parseApiKeys } from './api-keys.js'
export { settingsHelp } from './help.js'
export { parseHostPatterns } from './parsers.js'
export { type Config, SETTINGS } from './settings.js'

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
