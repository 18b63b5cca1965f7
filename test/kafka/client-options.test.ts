import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../config/config.js'
import {
  commandTokenProvider,
  describeKafkaSecurity,
  fileTokenProvider,
  jwtExpiry,
  kafkaClientOptions,
  kafkaConnectionOptions,
} from '../../kafka/client-options.js'

const dir = mkdtempSync(join(tmpdir(), 'adgate-client-options-'))
const file = (name: string, content: string) => {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

function jwt(expSeconds: number): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${part({ alg: 'none' })}.${part({ sub: 'adgate', exp: expSeconds })}.sig`
}

describe('kafkaConnectionOptions', () => {
  it('PLAINTEXT adds nothing', () => {
    expect(kafkaConnectionOptions(loadConfig({}), ['127.0.0.1:9092'])).toEqual({})
  })

  it('SASL_SSL/SCRAM: verified TLS with the CA, the password read from its file at each authentication', async () => {
    const ca = file('ca.pem', 'CA-PEM')
    const pw = file('pw', 's3cret-one\n')
    const config = loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'app',
      KAFKA_SASL_PASSWORD_FILE: pw,
      KAFKA_SSL_CA_FILE: ca,
    })
    const o = kafkaConnectionOptions(config, ['127.0.0.1:9092'])
    expect(o.tls?.rejectUnauthorized).toBe(true)
    expect(o.tls?.checkServerIdentity).toBeUndefined() // Node's hostname check stays
    expect(String(o.tls?.ca)).toBe('CA-PEM')
    expect(o.tlsServerName).toBe(false) // no SNI for an IP address
    expect(o.sasl?.mechanism).toBe('SCRAM-SHA-512')
    expect(o.sasl?.username).toBe('app')
    const password = o.sasl?.password as () => string
    expect(password()).toBe('s3cret-one')
    writeFileSync(pw, 's3cret-two\n')
    expect(password()).toBe('s3cret-two')
    expect(kafkaClientOptions(config, ['kafka.example.com:9096'])).toMatchObject({
      clientId: 'adgate',
      bootstrapBrokers: ['kafka.example.com:9096'],
      tlsServerName: true,
    })
  })

  it('mTLS: the client certificate and key', () => {
    const config = loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'SSL',
      KAFKA_SSL_CERT_FILE: file('client.pem', 'CERT'),
      KAFKA_SSL_KEY_FILE: file('client.key', 'KEY'),
    })
    const o = kafkaConnectionOptions(config)
    expect(String(o.tls?.cert)).toBe('CERT')
    expect(String(o.tls?.key)).toBe('KEY')
    expect(o.sasl).toBeUndefined()
  })

  it('describeKafkaSecurity names settings, never a secret', () => {
    const config = loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: 'app',
      KAFKA_SASL_PASSWORD: 'hunter2-secret',
    })
    const described = JSON.stringify(describeKafkaSecurity(config))
    expect(described).toMatch(/SASL_PLAINTEXT/)
    expect(described).toMatch(/"username":"app"/)
    expect(described).not.toMatch(/hunter2/)
  })
})

describe('OAUTHBEARER tokens', () => {
  it('a token file is re-read when it changes', () => {
    const path = file('token', 'token-one\n')
    const token = fileTokenProvider(path)
    expect(token()).toBe('token-one')
    writeFileSync(path, 'token-number-two')
    expect(token()).toBe('token-number-two')
    writeFileSync(path, '')
    expect(() => token()).toThrow(/KAFKA_SASL_OAUTHBEARER_TOKEN_FILE .* is empty/)
  })

  it('a command token is kept until shortly before its JWT expiry, then fetched again', async () => {
    let clock = 1_000_000_000_000
    const counter = file('runs', '')
    const first = jwt(clock / 1000 + 600)
    const command = `echo x >> ${counter}; echo ${first}`
    const token = commandTokenProvider(command, () => clock)
    expect(await token()).toBe(first)
    expect(await token()).toBe(first) // cached: the command ran once
    const { readFileSync } = await import('node:fs')
    expect(readFileSync(counter, 'utf8')).toBe('x\n')
    clock += 560_000 // within a minute of expiry
    expect(await token()).toBe(first)
    expect(readFileSync(counter, 'utf8')).toBe('x\nx\n')
  })

  it('a failing command names the setting and not its output', async () => {
    const token = commandTokenProvider('echo secret-output; exit 3')
    await expect(token()).rejects.toThrow(/^KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND failed$/)
  })

  it('reads the exp claim of a JWT only', () => {
    expect(jwtExpiry(jwt(1700000000))).toBe(1_700_000_000_000)
    expect(jwtExpiry('opaque-token')).toBeUndefined()
  })
})
