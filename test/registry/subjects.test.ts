// ADGATE_SCHEMA_REGISTRY_URL against a real Confluent-compatible registry (Apicurio 3.3.3 from
// Maven Central, scripts/registry.mjs): subjects registered, the registry's ids in the wire format
// of what the gateway writes to Kafka, the correlator's decode path resolving them, and an
// incompatible version refused. Basic auth is checked against a local HTTP server: Apicurio's
// authentication needs an OIDC provider, which is not cheap to stand up here.
import { spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Consumer } from '@platformatic/kafka'
import avro from 'avsc'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { loadConfig } from '../../config/config.js'
import { decodeForJoin } from '../../correlator/decode.js'
import { EVENT_INFO } from '../../events/catalog.js'
import { EVENT_SCHEMAS, type SchemaVersion, SUBJECTS, subjectOf } from '../../events/schemas.js'
import { generateEvents } from '../../generator/funnel.js'
import { RegistryError, SchemaRegistryClient } from '../../registry/client.js'
import { SchemaRegistryRefusal, syncSubjects, WriterSchemas } from '../../registry/subjects.js'
import { endOffsets } from '../support/consume.js'
import { post, startGateway } from '../support/gateway.js'
import { ensureRegistry } from '../support/registry.js'

const brokers = inject('kafkaBrokers')

describe('the registry client (local HTTP server)', () => {
  it('sends Basic auth and the registry media type, and maps 404 to "not there"', async () => {
    const seen: IncomingHttpHeaders[] = []
    const server = createServer((req, res) => {
      seen.push(req.headers)
      res.writeHead(req.url === '/base/subjects/s-value' ? 404 : 200, { 'content-type': 'application/json' })
      res.end(
        req.url === '/base/subjects/s-value'
          ? '{"error_code":40401,"message":"Subject not found"}'
          : '{"id":7}',
      )
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as AddressInfo
    const client = new SchemaRegistryClient({
      url: new URL(`http://127.0.0.1:${port}/base/`),
      user: 'u',
      password: 'p:w',
    })
    try {
      expect(await client.lookup('s-value', '"int"')).toBe('no-subject')
      expect(await client.register('s-value', '"int"')).toBe(7)
      expect(seen[0]!.authorization).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`)
      expect(seen[1]!['content-type']).toBe('application/vnd.schemaregistry.v1+json')
    } finally {
      client.close()
      server.close()
    }
  })

  it('an unreachable registry is named in the error that stops the start', async () => {
    const server = createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const { port } = server.address() as AddressInfo
    await new Promise((r) => server.close(r))
    const client = new SchemaRegistryClient({ url: new URL(`http://127.0.0.1:${port}`) })
    await expect(syncSubjects(client)).rejects.toThrow(
      `schema registry http://127.0.0.1:${port}: POST /subjects/adgate.bids-value: connect ECONNREFUSED`,
    )
    client.close()
  })

  it('is configured only as a whole, and never echoes the password', () => {
    const base = { ADGATE_SCHEMA_REGISTRY_URL: 'http://r:8081' }
    expect(() => loadConfig({ ...base, ADGATE_SCHEMA_REGISTRY_USER: 'u' })).toThrow(/USER and a password/)
    expect(() =>
      loadConfig({ ADGATE_SCHEMA_REGISTRY_USER: 'u', ADGATE_SCHEMA_REGISTRY_PASSWORD: 'hunter22' }),
    ).toThrow(/need ADGATE_SCHEMA_REGISTRY_URL/)
    expect(() => loadConfig({ ADGATE_SCHEMA_REGISTRY_URL: 'ftp://r' })).toThrow(/http:\/\/ or https:\/\//)
    expect(
      loadConfig({ ...base, ADGATE_SCHEMA_REGISTRY_USER: 'u', ADGATE_SCHEMA_REGISTRY_PASSWORD: 'x' })
        .schemaRegistryUrl?.host,
    ).toBe('r:8081')
  })
})

describe('against Apicurio Registry', () => {
  let url: string | null = null
  let client: SchemaRegistryClient

  beforeAll(async () => {
    url = await ensureRegistry()
    if (url) client = new SchemaRegistryClient({ url: new URL(url) })
  }, 240_000)
  afterAll(() => client?.close())

  it('registers every subject (TopicNameStrategy), once: a second start gets the same ids', async ({
    skip,
  }) => {
    if (!url) return skip()
    const ids = await syncSubjects(client)
    const subjects = (await (await fetch(`${url}/subjects`)).json()) as string[]
    for (const [subject, versions] of SUBJECTS) {
      expect(subjects).toContain(subject)
      for (const v of versions) expect(await client.lookup(subject, JSON.stringify(v.json))).toBe(ids[v.file])
    }
    expect(await syncSubjects(client)).toEqual(ids)
    const config = (await (await fetch(`${url}/config/${subjectOf(EVENT_INFO.bid.topic)}`)).json()) as Record<
      string,
      string
    >
    expect(config.compatibilityLevel).toBe('BACKWARD')
  })

  it('refuses a version that breaks backward compatibility, naming the file', async ({ skip }) => {
    if (!url) return skip()
    const subject = `adgate.test-${randomUUID()}-value`
    const version = (n: number, fields: object[]): SchemaVersion => {
      const json = { type: 'record', name: 'T', fields } as avro.Schema
      return {
        subject,
        version: n,
        id: 0,
        file: `t.v${n}.avsc`,
        json,
        type: avro.Type.forSchema(json),
      } as SchemaVersion
    }
    const v1 = version(1, [{ name: 'a', type: 'int' }])
    const compatible = version(2, [...[{ name: 'a', type: 'int' }], { name: 'b', type: 'int', default: 0 }])
    const breaking = version(3, [
      { name: 'a', type: 'int' },
      { name: 'c', type: 'string' },
    ])
    const ok = await syncSubjects(client, new Map([[subject, [v1, compatible]]]))
    expect(ok['t.v2.avsc']).not.toBe(ok['t.v1.avsc'])
    const level = (await (await fetch(`${url}/config/${subject}`)).json()) as Record<string, string>
    expect(level.compatibilityLevel).toBe('BACKWARD')
    await expect(syncSubjects(client, new Map([[subject, [v1, compatible, breaking]]]))).rejects.toThrow(
      new SchemaRegistryRefusal(
        `the schema registry refuses schemas/t.v3.avsc as a new version of ${subject}: is not compatible with its latest version`,
      ),
    )
  })

  it('an id the registry does not know stays unknown (its records count as undecodable)', async ({
    skip,
  }) => {
    if (!url) return skip()
    await expect(client.schemaById(2_000_000_000)).rejects.toBeInstanceOf(RegistryError)
    const record = Buffer.from([0, 0x77, 0x35, 0x94, 0x00, 0x02])
    await new WriterSchemas(client).ensure([record])
    expect(() => decodeForJoin('impression', record)).toThrow(/unknown schema id/)
  })

  it.skipIf(brokers.length === 0)(
    'the gateway writes the registry ids, and the correlator decode path resolves them',
    async ({ skip }) => {
      if (!url) return skip()
      const ids = await syncSubjects(client)
      const gw = await startGateway(brokers, { ADGATE_SCHEMA_REGISTRY_URL: url })
      try {
        expect(gw.logs()).toContain('schema registry: subjects registered')
        const topic = EVENT_INFO.impression.topic
        const from = await endOffsets(brokers, [topic])
        const events = generateEvents('impression', 5, Date.now() % 100_000)
        const res = await post(`${gw.url}/v1/impressions`, JSON.stringify(events), {
          'content-type': 'application/json',
        })
        expect(res.status).toBe(200)
        const wanted = new Set(events.map((e) => e.event_id))
        const values = await readRaw(
          brokers,
          topic,
          from.get(topic)!,
          (v) => wanted.has(eventIdOf(v)),
          wanted.size,
        )
        const expectedId = ids[EVENT_SCHEMAS.impression.file]!
        expect(expectedId).not.toBe(1101) // not the built-in id
        for (const v of values) expect([v[0], v.readInt32BE(1)]).toEqual([0, expectedId])
        // What the registry holds under that id is adgate's schema...
        expect(JSON.parse(await client.schemaById(expectedId))).toEqual(EVENT_SCHEMAS.impression.json)
        // ...and the correlator's decode resolves the id through it (unknown to this process until then).
        await new WriterSchemas(client).ensure(values)
        const decoded = values.map((v) => decodeForJoin('impression', v))
        expect(decoded.map((d) => d.event_id).sort()).toEqual([...wanted].sort())
      } finally {
        expect(await gw.stop()).toBe(0)
      }
    },
    120_000,
  )
})

/** The event id of an impression record under any schema id: the first field, an Avro string. */
function eventIdOf(v: Buffer): string {
  const type = avro.Type.forSchema('string')
  return type.fromBuffer(v.subarray(5), undefined, true) as string
}

async function readRaw(
  brokers: string[],
  topic: string,
  from: Map<number, string>,
  mine: (v: Buffer) => boolean,
  count: number,
): Promise<Buffer[]> {
  const consumer = new Consumer({
    clientId: 'adgate-test',
    groupId: `t-${randomUUID()}`,
    bootstrapBrokers: brokers,
  })
  const out: Buffer[] = []
  try {
    // From the given offsets; a partition not given, from its beginning.
    const offsets = [...from].map(([partition, offset]) => ({ topic, partition, offset: BigInt(offset) }))
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'manual',
      fallbackMode: 'earliest',
      offsets,
      autocommit: false,
    })
    const timer = setTimeout(() => stream.destroy(), 30_000)
    try {
      for await (const m of stream) {
        if (m.value && mine(m.value)) out.push(m.value)
        if (out.length >= count) break
      }
    } catch {
      // destroyed by the timer: what was read is the answer
    } finally {
      clearTimeout(timer)
    }
  } finally {
    await consumer.close(true)
  }
  return out
}

describe('the registry client over https with a private CA', () => {
  it('verifies the registry against ADGATE_SCHEMA_REGISTRY_CA_FILE, and refuses it without', async ({
    skip,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'adgate-registry-ca-'))
    // A private CA and a server certificate for 127.0.0.1 signed by it.
    const openssl = (command: string) =>
      spawnSync('openssl', command.split(' '), { cwd: dir, stdio: 'ignore' }).status === 0
    writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n')
    const made =
      openssl('req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj /CN=test-ca') &&
      openssl('req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1') &&
      openssl(
        'x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 1 -extfile ext',
      )
    if (!made) return skip()
    const server = createHttpsServer(
      { key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.crt')) },
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{"schema":"\\"int\\""}')
      },
    )
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}`)
    const trusted = new SchemaRegistryClient({ url, caFile: join(dir, 'ca.crt') })
    const untrusted = new SchemaRegistryClient({ url })
    try {
      expect(await trusted.schemaById(1)).toBe('"int"')
      await expect(untrusted.schemaById(1)).rejects.toThrow(/self-signed|unable to verify|certificate/i)
    } finally {
      trusted.close()
      untrusted.close()
      server.close()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
