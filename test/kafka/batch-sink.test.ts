// The gateway's producer against real brokers: the shared single broker for idempotence, order
// and refusals; the secured cluster for TLS, SASL and ACLs; silent sockets for the ack deadline.
import { randomUUID } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { Admin, Consumer } from '@platformatic/kafka'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { loadConfig } from '../../config/config.js'
import { ACKED, BatchSink, KafkaRefusedError, KafkaSecurityError, REFUSED } from '../../kafka/batch-sink.js'
import { kafkaConnectionOptions } from '../../kafka/client-options.js'
import { RecordBatchBuilder } from '../../kafka/protocol/record-batch.js'

const brokers = inject('kafkaBrokers')
const cluster = inject('kafkaCluster')
const NO_HEADERS = Buffer.from([0])
const quiet = { info() {}, warn() {}, error() {}, debug() {} } as never
const sinks: BatchSink[] = []

function sink(
  options: Partial<ConstructorParameters<typeof BatchSink>[0]> & { brokers: string[]; topics: string[] },
) {
  const s = new BatchSink({
    clientId: 'adgate-test',
    connection: {},
    ackTimeoutMs: 5000,
    maxInFlight: 5,
    maxPendingBytes: 1 << 28,
    logger: quiet,
    ...options,
  })
  sinks.push(s)
  return s
}

afterAll(async () => {
  await Promise.all(sinks.map((s) => s.close()))
})

/** One worker task: `records` values "<task>-<n>" for each partition. */
function task(builder: RecordBatchBuilder, topic: string, partitions: number, id: number, records: number) {
  for (let p = 0; p < partitions; p++)
    for (let n = 0; n < records; n++) builder.add(topic, p, null, Buffer.from(`${id}-${n}`), NO_HEADERS)
  const out = builder.finish(Date.now())
  return { buffer: Buffer.from(out.buffer), batches: out.batches }
}

async function createTopic(
  admin: Admin,
  topic: string,
  partitions: number,
  configs: Record<string, string> = {},
) {
  await admin.createTopics({
    topics: [topic],
    partitions,
    replicas: 1,
    configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
  })
}

/** Every value of the topic, per partition, in log order. */
async function readAll(bootstrap: string[], topic: string, expected: number): Promise<Map<number, string[]>> {
  const consumer = new Consumer({
    clientId: 'adgate-test',
    groupId: `test-${randomUUID()}`,
    bootstrapBrokers: bootstrap,
  })
  const out = new Map<number, string[]>()
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', maxWaitTime: 200 })
  let n = 0
  const timer = setTimeout(() => void stream.close(), 30_000)
  try {
    for await (const m of stream) {
      const list = out.get(m.partition) ?? []
      list.push(String(m.value))
      out.set(m.partition, list)
      if (++n >= expected) break
    }
  } finally {
    clearTimeout(timer)
    await stream.close()
    await consumer.close()
  }
  return out
}

describe.skipIf(brokers.length === 0)('BatchSink on a broker', () => {
  const admin = () => new Admin({ clientId: 'adgate-test', bootstrapBrokers: brokers })

  it('writes every batch exactly once and in order per partition with many sends in flight, as an idempotent producer', async () => {
    const topic = `adgate-test-sink-${randomUUID()}`
    const a = admin()
    await createTopic(a, topic, 3)
    await a.close()
    const s = sink({ brokers, topics: [topic] })
    await s.connect()
    const builder = new RecordBatchBuilder()
    const sets = Array.from({ length: 150 }, (_, i) => task(builder, topic, 3, i, 7))
    await Promise.all(sets.map((set) => s.send(set)))
    const read = await readAll(brokers, topic, 150 * 3 * 7)
    const expected = sets.flatMap((_, i) => Array.from({ length: 7 }, (_, n) => `${i}-${n}`))
    for (let p = 0; p < 3; p++) expect(read.get(p)).toEqual(expected)
    expect(s.stats).toMatchObject({ records: 450 * 7, errors: 0, possibleDuplicates: 0 })
    // Batches queued behind a partition's 5 requests in flight went merged: fewer, never more.
    expect(s.stats.batches).toBeLessThanOrEqual(450)
    expect(s.stats.batches + s.stats.merged).toBeGreaterThanOrEqual(450)
  })

  it('with a linger, the sends that arrive within a linger of the last request go as one merged batch per partition in one request, exactly once and in order', async () => {
    const topic = `adgate-test-sink-${randomUUID()}`
    const a = admin()
    await createTopic(a, topic, 4)
    await a.close()
    const s = sink({ brokers, topics: [topic], lingerMs: 2000 })
    await s.connect()
    const builder = new RecordBatchBuilder()
    const one = (i: number) => {
      builder.add(topic, i % 4, null, Buffer.from(`${i}`), NO_HEADERS)
      const out = builder.finish(Date.now())
      return s.send({ buffer: Buffer.from(out.buffer), batches: out.batches })
    }
    // Every partition's first batch acknowledged: the broker holds the producer's sequences.
    await Promise.all([0, 1, 2, 3].map((p) => one(p)))
    const before = { ...s.stats }
    // Then 100 single-batch sends; only microtasks run here, so the linger cannot end before the
    // loop does (the last request went a moment ago): every one of them is waiting when it ends.
    const microtasks = async (n: number) => {
      for (let k = 0; k < n; k++) await Promise.resolve()
    }
    const sends: Promise<unknown>[] = []
    for (let i = 4; i < 104; i++) {
      sends.push(one(i))
      await microtasks(20)
    }
    expect(s.stats.requests - before.requests).toBe(0)
    await Promise.all(sends)
    // Without merging: 100 batches, one per partition per request, in at least 25 requests.
    expect(s.stats.requests - before.requests).toBe(1)
    expect(s.stats.batches - before.batches).toBe(4)
    expect(s.stats.merged - before.merged).toBe(100)
    const read = await readAll(brokers, topic, 104)
    for (let p = 0; p < 4; p++)
      expect(read.get(p)).toEqual(Array.from({ length: 26 }, (_, k) => `${k * 4 + p}`))
  })

  it('a batch over max.message.bytes is refused at once (never retried until the deadline), and the partition goes on', async () => {
    const topic = `adgate-test-sink-${randomUUID()}`
    const a = admin()
    await createTopic(a, topic, 1, { 'max.message.bytes': '2000' })
    await a.close()
    const s = sink({ brokers, topics: [topic], ackTimeoutMs: 20_000 })
    await s.connect()
    const builder = new RecordBatchBuilder()
    await s.send(task(builder, topic, 1, 0, 3))
    // Random bytes do not compress: one 5000-byte record makes a batch over the limit.
    builder.add(
      topic,
      0,
      null,
      Buffer.from(Array.from({ length: 5000 }, () => Math.floor(Math.random() * 256))),
      NO_HEADERS,
    )
    const big = builder.finish(Date.now())
    const bigSet = { buffer: Buffer.from(big.buffer), batches: big.batches }
    expect(s.refusal(bigSet)).toBeInstanceOf(KafkaRefusedError) // known before anything is spooled
    const started = Date.now()
    const err = (await s.send(bigSet)).get(0)
    expect(err).toBeInstanceOf(KafkaRefusedError)
    expect((err as KafkaRefusedError).tooLarge).toBe(true)
    expect(Date.now() - started).toBeLessThan(10_000)
    await s.send(task(builder, topic, 1, 1, 3))
    await s.send(task(builder, topic, 1, 2, 3))
    const read = await readAll(brokers, topic, 9)
    expect(read.get(0)).toEqual(['0-0', '0-1', '0-2', '1-0', '1-1', '1-2', '2-0', '2-1', '2-2'])
  })

  it('MESSAGE_TOO_LARGE from the broker, its limit unknown to adgate: only the batch at fault is refused, the rest of the set is written', async () => {
    const topic = `adgate-test-sink-${randomUUID()}`
    const a = admin()
    await createTopic(a, topic, 2)
    const s = sink({ brokers, topics: [topic], ackTimeoutMs: 20_000 })
    await s.connect() // reads the default limit (1 MB)
    // Lowered after adgate read it: only the broker knows the new limit.
    await a.alterConfigs({
      resources: [
        { resourceType: 2, resourceName: topic, configs: [{ name: 'max.message.bytes', value: '2000' }] },
      ],
    })
    for (let i = 0; i < 100; i++) {
      const [d] = await a.describeConfigs({
        resources: [{ resourceType: 2, resourceName: topic, configurationKeys: ['max.message.bytes'] }],
      })
      if (d?.configs.find((c) => c.name === 'max.message.bytes')?.value === '2000') break
      await new Promise((r) => setTimeout(r, 100))
    }
    await a.close()
    const builder = new RecordBatchBuilder()
    const random = Buffer.from(Array.from({ length: 5000 }, () => Math.floor(Math.random() * 256)))
    builder.add(topic, 0, null, random, NO_HEADERS)
    for (let n = 0; n < 3; n++) builder.add(topic, 1, null, Buffer.from(`0-${n}`), NO_HEADERS)
    const out = builder.finish(Date.now())
    const set = { buffer: Buffer.from(out.buffer), batches: out.batches }
    expect(s.refusal(set)).toBeNull() // adgate does not know the new limit
    const big = set.batches.findIndex((b) => b.partition === 0)
    const progress = { acked: new Uint8Array(set.batches.length), refused: new Map() }
    const refused = await s.send(set, progress)
    expect([...refused.keys()]).toEqual([big])
    expect(refused.get(big)!.tooLarge).toBe(true)
    expect([...progress.acked]).toEqual(set.batches.map((_, i) => (i === big ? REFUSED : ACKED)))
    // The refused partition goes on (under a new producer id: its sequence has a gap).
    const next = await s.send(task(builder, topic, 2, 1, 3))
    expect(next.size).toBe(0)
    const read = await readAll(brokers, topic, 9)
    expect(read.get(0)).toEqual(['1-0', '1-1', '1-2'])
    expect(read.get(1)).toEqual(['0-0', '0-1', '0-2', '1-0', '1-1', '1-2'])
  })
})

describe('BatchSink answers by the ack deadline whatever the broker does', () => {
  const servers: Server[] = []
  const sockets: Socket[] = []
  afterAll(() => {
    for (const c of sockets) c.destroy()
    for (const srv of servers) srv.close()
  })

  /** Accepts connections and never answers a byte (a SIGSTOPped or blackholed broker). */
  async function silentBroker(): Promise<string> {
    const srv = createServer((c) => sockets.push(c))
    servers.push(srv)
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    return `127.0.0.1:${(srv.address() as { port: number }).port}`
  }

  it('connect() and send() settle when the broker never answers (plaintext and during a TLS handshake)', async () => {
    const silent = await silentBroker()
    for (const connection of [{}, { tls: { rejectUnauthorized: true } }]) {
      const s = sink({ brokers: [silent], topics: ['adgate.impressions'], ackTimeoutMs: 800, connection })
      let started = Date.now()
      await expect(s.connect()).rejects.toThrow()
      expect(Date.now() - started).toBeLessThan(800 + 1500)
      const builder = new RecordBatchBuilder()
      started = Date.now()
      const err = await s.send(task(builder, 'adgate.impressions', 1, 0, 1)).catch((e: unknown) => e)
      expect(String(err)).toMatch(/did not acknowledge within 800 ms; none of these events were sent/)
      expect(Date.now() - started).toBeLessThan(800 + 1500)
    }
  })

  it('metadata comes from any live broker, not only the first listed', async () => {
    if (brokers.length === 0) return
    // Its own topic: a fresh broker has none of the gateway's until a gateway created them.
    const topic = `adgate-test-sink-${randomUUID()}`
    const a = new Admin({ clientId: 'adgate-test', bootstrapBrokers: brokers })
    await createTopic(a, topic, 2)
    await a.close()
    const silent = await silentBroker()
    const s = sink({
      brokers: [silent, '127.0.0.1:1', ...brokers],
      topics: [topic],
      ackTimeoutMs: 3000,
    })
    await s.connect()
    expect(s.partitionCounts()[topic]).toBe(2)
  })
})

describe.skipIf(cluster === null)('BatchSink on the secured cluster', () => {
  const env = (user: 'adgate' | 'noacl', password?: string) => {
    const c = cluster!
    return loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: c.users[user].username,
      KAFKA_SASL_PASSWORD: password ?? c.users[user].password,
      KAFKA_SSL_CA_FILE: c.caFile,
    })
  }

  async function clusterTopic(): Promise<string> {
    const c = cluster!
    const topic = `${c.aclPrefix}.test-sink-${randomUUID()}`
    const { clusterClientOptions } = await import('../support/kafka-cluster.js')
    const a = new Admin({ clientId: 'adgate-test', ...clusterClientOptions(c, 'admin') })
    await a.createTopics({ topics: [topic], partitions: 2, replicas: 3 })
    await a.close()
    return topic
  }

  it('SASL_SSL/SCRAM from the shared settings: writes', async () => {
    const c = cluster!
    const topic = await clusterTopic()
    const s = sink({
      brokers: c.brokers,
      topics: [topic],
      // A new RF-3 topic elects its leaders while the first sends go out: a generous deadline.
      ackTimeoutMs: 30_000,
      connection: kafkaConnectionOptions(env('adgate'), c.brokers),
    })
    await s.connect()
    const builder = new RecordBatchBuilder()
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.send(task(builder, topic, 2, i, 5))))
    expect(s.ready).toBe(true)
    expect(s.stats.records).toBe(200)
  })

  it('mTLS with the client certificate', async () => {
    const c = cluster!
    const topic = await clusterTopic()
    const config = loadConfig({
      KAFKA_SECURITY_PROTOCOL: 'SSL',
      KAFKA_SSL_CA_FILE: c.caFile,
      KAFKA_SSL_CERT_FILE: c.clientCertFile,
      KAFKA_SSL_KEY_FILE: c.clientKeyFile,
    })
    const s = sink({
      brokers: c.mtlsBrokers,
      topics: [topic],
      ackTimeoutMs: 30_000,
      connection: kafkaConnectionOptions(config, c.mtlsBrokers),
    })
    await s.connect()
    await s.send(task(new RecordBatchBuilder(), topic, 2, 0, 3))
    expect(s.stats.records).toBe(6)
  })

  it('a wrong password: not ready, the failure names the setting and never the password, sends fail at once', async () => {
    const c = cluster!
    const s = sink({
      brokers: c.brokers,
      topics: ['adgate.impressions'],
      connection: kafkaConnectionOptions(env('adgate', 'wrong-password-123'), c.brokers),
    })
    await expect(s.connect()).rejects.toThrow()
    expect(s.ready).toBe(false)
    expect(s.securityFailure).toMatch(/KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD/)
    expect(s.securityFailure).not.toMatch(/wrong-password/)
    const err = await s
      .send(task(new RecordBatchBuilder(), 'adgate.impressions', 1, 0, 1))
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KafkaSecurityError)
  })

  it('a user without a Write ACL: refused as unauthorized (never retried to the deadline), not ready', async () => {
    const c = cluster!
    const topic = await clusterTopic()
    const s = sink({
      brokers: c.brokers,
      topics: [topic],
      ackTimeoutMs: 20_000,
      connection: kafkaConnectionOptions(env('noacl'), c.brokers),
    })
    await s.connect().catch(() => {})
    const started = Date.now()
    const err = await s.send(task(new RecordBatchBuilder(), topic, 1, 0, 1)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KafkaSecurityError)
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(s.ready).toBe(false)
    expect(s.securityFailure).toMatch(/AUTHORIZATION_FAILED/)
  })

  it('plaintext against the TLS listener is answered by the deadline and never taken as ready', async () => {
    const c = cluster!
    const s = sink({ brokers: c.brokers, topics: ['adgate.impressions'], ackTimeoutMs: 1500 })
    const started = Date.now()
    await expect(s.connect()).rejects.toThrow()
    expect(Date.now() - started).toBeLessThan(1500 * 2 + 2000)
    expect(s.ready).toBe(false)
  })
})
