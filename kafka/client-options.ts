import { execFile } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import type { ConnectionOptions as TlsOptions } from 'node:tls'
import type { CredentialProvider, SASLOptions } from '@platformatic/kafka'
import type { Config } from '../config/config.js'

/**
 * The one place where adgate's Kafka security settings become connection options of the client
 * library (@platformatic/kafka), for every role: gateway producer, admin, correlator consumer and
 * re-key producer, replayer, tests and bench tools. Secrets are read here and nowhere else, and
 * never leave as text: passwords and tokens are handed over as providers read at authentication.
 */
export type KafkaSecurityConfig = Pick<
  Config,
  | 'kafkaSecurityProtocol'
  | 'kafkaSaslMechanism'
  | 'kafkaSaslUsername'
  | 'kafkaSaslPassword'
  | 'kafkaSaslPasswordFile'
  | 'kafkaSaslOauthbearerTokenFile'
  | 'kafkaSaslOauthbearerTokenCommand'
  | 'kafkaSslCaFile'
  | 'kafkaSslCertFile'
  | 'kafkaSslKeyFile'
>

/** The security part of @platformatic/kafka's ConnectionOptions (spread into any client's options). */
export interface KafkaConnectionOptions {
  tls?: TlsOptions
  /** Send SNI (cloud brokers route by it); off for IP addresses, where RFC 6066 forbids it. */
  tlsServerName?: boolean
  sasl?: SASLOptions
}

/** How long before a command token's expiry it is fetched again. */
const TOKEN_REFRESH_MARGIN_MS = 60_000
const TOKEN_COMMAND_TIMEOUT_MS = 30_000

export function kafkaConnectionOptions(
  config: KafkaSecurityConfig,
  brokers: readonly string[] = [],
): KafkaConnectionOptions {
  const out: KafkaConnectionOptions = {}
  const protocol = config.kafkaSecurityProtocol
  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    // rejectUnauthorized and Node's checkServerIdentity stay at their defaults: the chain and the
    // broker's hostname (or IP SAN) are always verified.
    const tls: TlsOptions = { rejectUnauthorized: true }
    if (config.kafkaSslCaFile) tls.ca = readFileSync(config.kafkaSslCaFile)
    if (config.kafkaSslCertFile && config.kafkaSslKeyFile) {
      tls.cert = readFileSync(config.kafkaSslCertFile)
      tls.key = readFileSync(config.kafkaSslKeyFile)
    }
    out.tls = tls
    out.tlsServerName = brokers.length > 0 && brokers.every((b) => isIP(hostOf(b)) === 0)
  }
  const mechanism = config.kafkaSaslMechanism
  if ((protocol === 'SASL_SSL' || protocol === 'SASL_PLAINTEXT') && mechanism) {
    if (mechanism === 'OAUTHBEARER') {
      const token = config.kafkaSaslOauthbearerTokenFile
        ? fileTokenProvider(config.kafkaSaslOauthbearerTokenFile)
        : commandTokenProvider(config.kafkaSaslOauthbearerTokenCommand ?? '')
      out.sasl = { mechanism, token }
    } else {
      out.sasl = {
        mechanism,
        username: config.kafkaSaslUsername ?? '',
        password: passwordProvider(config),
      }
    }
  }
  return out
}

/** Client options for any @platformatic/kafka client (Producer, Admin, Consumer, ConnectionPool). */
export function kafkaClientOptions(
  config: KafkaSecurityConfig & Pick<Config, 'kafkaClientId'>,
  brokers: readonly string[],
): KafkaConnectionOptions & { clientId: string; bootstrapBrokers: string[] } {
  return {
    clientId: config.kafkaClientId,
    bootstrapBrokers: [...brokers],
    ...kafkaConnectionOptions(config, brokers),
  }
}

/** What the logs may say about Kafka security: never a secret, never a file's content. */
export function describeKafkaSecurity(config: KafkaSecurityConfig): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = { protocol: config.kafkaSecurityProtocol }
  if (config.kafkaSaslMechanism) out.mechanism = config.kafkaSaslMechanism
  if (config.kafkaSaslUsername) out.username = config.kafkaSaslUsername
  if (config.kafkaSaslPasswordFile) out.passwordFile = config.kafkaSaslPasswordFile
  if (config.kafkaSaslOauthbearerTokenFile) out.tokenFile = config.kafkaSaslOauthbearerTokenFile
  if (config.kafkaSaslOauthbearerTokenCommand) out.tokenCommand = true
  if (config.kafkaSslCaFile) out.caFile = config.kafkaSslCaFile
  if (config.kafkaSslCertFile) out.mtls = true
  return out
}

function hostOf(broker: string): string {
  const colon = broker.lastIndexOf(':')
  return colon < 0 ? broker : broker.slice(0, colon)
}

function passwordProvider(config: KafkaSecurityConfig): string | CredentialProvider {
  const file = config.kafkaSaslPasswordFile
  if (!file) return config.kafkaSaslPassword ?? ''
  // Read at each authentication, so a rotated secret is picked up by the next connection.
  return () => withoutNewline(readFileSync(file, 'utf8'))
}

/** The token in `path`, read again only when the file changed (size or mtime). */
export function fileTokenProvider(path: string): CredentialProvider {
  let stamp = ''
  let token = ''
  return () => {
    const st = statSync(path)
    const now = `${st.mtimeMs}:${st.size}`
    if (now !== stamp) {
      token = withoutNewline(readFileSync(path, 'utf8'))
      stamp = now
    }
    if (token === '') throw new Error(`KAFKA_SASL_OAUTHBEARER_TOKEN_FILE ${path} is empty`)
    return token
  }
}

/**
 * The token a shell command prints, kept until shortly before the expiry its JWT `exp` claim
 * names (a token without one is fetched again at every authentication). Concurrent
 * authentications share one run of the command.
 */
export function commandTokenProvider(command: string, now: () => number = Date.now): CredentialProvider {
  let token = ''
  let refreshAt = 0
  let running: Promise<string> | null = null
  return () => {
    if (token !== '' && now() < refreshAt) return token
    running ??= runCommand(command)
      .then((out) => {
        token = out
        const exp = jwtExpiry(out)
        refreshAt = exp === undefined ? 0 : exp - TOKEN_REFRESH_MARGIN_MS
        return out
      })
      .finally(() => {
        running = null
      })
    return running
  }
}

function runCommand(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', command], { timeout: TOKEN_COMMAND_TIMEOUT_MS }, (err, stdout) => {
      // Neither the command's output nor its text is repeated: either may hold a secret.
      if (err) reject(new Error('KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND failed', { cause: { code: err.code } }))
      else if (stdout.trim() === '')
        reject(new Error('KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND printed no token'))
      else resolve(stdout.trim())
    })
  })
}

/** The `exp` claim of a JWT, in epoch ms; undefined when the token is not a JWT or has none. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1]
  if (payload === undefined) return undefined
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp
    return typeof exp === 'number' ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

function withoutNewline(s: string): string {
  return s.replace(/\r?\n$/, '')
}
