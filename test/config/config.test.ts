import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isConfigError, loadConfig, parseApiKeys, SETTINGS, settingsHelp } from '../../config/config.js'

describe('configuration', () => {
  it('defaults load and are frozen', () => {
    const c = loadConfig({})
    expect(c.port).toBe(8080)
    expect(c.maxBodyBytes).toBe(5 * 1024 * 1024)
    expect(c.apiKeys).toBeUndefined()
    expect(Object.isFrozen(c)).toBe(true)
  })

  it.each([
    [{ PORT: 'eighty' }, /^PORT="eighty": must be a whole number from 0 to 65535$/],
    [{ ADGATE_MAX_BODY_BYTES: '5 parsecs' }, /ADGATE_MAX_BODY_BYTES.*must be a size/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud": must be one of trace, debug/],
    [{ KAFKA_BROKERS: 'no-port' }, /KAFKA_BROKERS.*host:port/],
    [{ ADGATE_MAX_EVNETS: '5' }, /ADGATE_MAX_EVNETS is not a setting/],
    [{ ADGATE_PORT: '1' }, /ADGATE_PORT was renamed to PORT/],
    [{ ADGATE_TLS_CERT: '/x.pem' }, /ADGATE_TLS_CERT and ADGATE_TLS_KEY must be set together/],
    [{ ADGATE_API_KEYS: 'a:short:bid' }, /at least 8 characters/],
    [{ ADGATE_API_KEYS: 'a:longenough:pizza' }, /unknown event type "pizza"/],
    [{ KAFKA_SECURITY_PROTOCOL: 'TLS' }, /KAFKA_SECURITY_PROTOCOL="TLS": must be one of PLAINTEXT, SSL/],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' },
      /KAFKA_SASL_MECHANISM must be set with KAFKA_SECURITY_PROTOCOL=SASL_SSL/,
    ],
    [{ KAFKA_SASL_MECHANISM: 'PLAIN' }, /KAFKA_SASL_MECHANISM needs KAFKA_SECURITY_PROTOCOL=SASL_SSL/],
    [
      {
        KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
        KAFKA_SASL_USERNAME: 'u',
      },
      /SCRAM-SHA-512 needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/,
    ],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER' },
      /OAUTHBEARER needs KAFKA_SASL_OAUTHBEARER_TOKEN_FILE or KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND/,
    ],
    [
      { KAFKA_SSL_CA_FILE: '/nonexistent/ca.pem' },
      /KAFKA_SSL_CA_FILE="\/nonexistent\/ca.pem": must name a readable file/,
    ],
    [
      { KAFKA_SECURITY_PROTOCOL: 'SSL', KAFKA_SSL_CERT_FILE: '/etc/hostname' },
      /KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE must be set together/,
    ],
    [
      { KAFKA_SSL_CA_FILE: '/etc/hostname' },
      /KAFKA_SSL_\* files need KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL/,
    ],
    [{ KAFKA_SASL_PASSWORD: 'hunter2-secret' }, /credentials need KAFKA_SECURITY_PROTOCOL=SASL_SSL/],
    [{ ADGATE_TOPIC_REPLICATION: '2', ADGATE_TOPIC_MIN_ISR: '3' }, /ADGATE_TOPIC_MIN_ISR must not be above/],
    [
      { ADGATE_TRUSTED_PROXIES: '10.0.0.0/8, proxy.internal' },
      /ADGATE_TRUSTED_PROXIES.*"proxy.internal" is not an IP address/,
    ],
    [{ ADGATE_TRUSTED_PROXIES: '10.0.0.0/33' }, /ADGATE_TRUSTED_PROXIES.*not an IP address or CIDR range/],
  ])('a bad value stops start-up naming the variable: %j', (env, message) => {
    let err: unknown
    try {
      loadConfig(env)
    } catch (e) {
      err = e
    }
    expect(isConfigError(err)).toBe(true)
    expect((err as Error).message).toMatch(message)
  })

  it('accepts a complete SASL_SSL/SCRAM setting and never echoes the password', () => {
    const c = loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'adgate',
      KAFKA_SASL_PASSWORD: 'hunter2-secret',
      KAFKA_SSL_CA_FILE: '/etc/hostname',
    })
    expect(c).toMatchObject({ kafkaSecurityProtocol: 'SASL_SSL', kafkaSaslMechanism: 'SCRAM-SHA-512' })
    expect(settingsHelp()).not.toMatch(/hunter2/)
    let message = ''
    try {
      loadConfig({ KAFKA_SASL_PASSWORD: 'hunter2-secret', KAFKA_SASL_PASSWORD_FILE: '/etc/hostname' })
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toMatch(/KAFKA_SASL_PASSWORD/)
    expect(message).not.toMatch(/hunter2/)
  })

  it('reads a JSON config file, with the environment taking precedence, and rejects unknown keys', () => {
    const file = join(tmpdir(), `adgate-config-${process.pid}.json`)
    writeFileSync(file, JSON.stringify({ PORT: 9001, ADGATE_MAX_EVENTS: 20 }))
    expect(loadConfig({ ADGATE_CONFIG: file }).port).toBe(9001)
    expect(loadConfig({ ADGATE_CONFIG: file, PORT: '9002' }).port).toBe(9002)
    writeFileSync(file, JSON.stringify({ PROT: 1 }))
    expect(() => loadConfig({ ADGATE_CONFIG: file })).toThrow(/unknown setting PROT/)
  })

  it('parses API keys with their types and rates', () => {
    const [a, b] = parseApiKeys('ssp:secret-123:bid|impression:50, tracker:secret-456:*')
    expect(a).toMatchObject({ name: 'ssp', secret: 'secret-123', rps: 50 })
    expect([...a!.types]).toEqual(['bid', 'impression'])
    expect(b!.types.size).toBe(4)
    expect(() => parseApiKeys('x:secret-123:bid,y:secret-123:bid')).toThrow(/appears twice/)
  })

  it('the README documents every setting', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
    for (const s of Object.values(SETTINGS)) expect(readme).toMatch(new RegExp(`\\|\\s*\`${s.env}\`\\s*\\|`))
  })
})
