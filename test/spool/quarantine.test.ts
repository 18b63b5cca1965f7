// A batch the spool acknowledged (200) that Kafka then refuses for good is never dropped: the
// replayer moves it to the spool's quarantine, the partition's later batches go on, and Kafka gets
// it once the topic takes it again. Against the shared broker: a topic whose max.message.bytes is
// lowered after the batches were spooled.
import { randomUUID } from 'node:crypto'
import { Admin, Consumer } from '@platformatic/kafka'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { type BatchSet, BatchSink, KafkaRefusedError } from '../../kafka/batch-sink.js'
import { Replayer } from '../../spool/replayer.js'
import { batch, openSpool, recordingLogger, until } from './support.js'

const brokers = inject('kafkaBrokers')
const closers: (() => Promise<unknown>)[] = []

afterAll(async () => {
  for (const close of closers.reverse()) await close()
})

async function setLimit(admin: Admin, topic: string, bytes: number): Promise<void> {
  const value = String(bytes)
  await admin.alterConfigs({
    resources: [{ resourceType: 2, resourceName: topic, configs: [{ name: 'max.message.bytes', value }] }],
  })
  for (;;) {
    const [d] = await admin.describeConfigs({
      resources: [{ resourceType: 2, resourceName: topic, configurationKeys: ['max.message.bytes'] }],
    })
    if (d?.configs.find((c) => c.name === 'max.message.bytes')?.value === value) return
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The topic's values in log order, once it holds `expected` records. */
async function readValues(topic: string, expected: number): Promise<string[]> {
  const consumer = new Consumer({
    clientId: 'adgate-test',
    groupId: `test-${randomUUID()}`,
    bootstrapBrokers: brokers,
  })
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', maxWaitTime: 200 })
  const out: string[] = []
  try {
    for await (const m of stream) {
      out.push(String(m.value))
      if (out.length >= expected) break
    }
  } finally {
    await stream.close()
    await consumer.close()
  }
  return out
}

describe.skipIf(brokers.length === 0)('a spooled batch Kafka refuses for good', () => {
  it('is quarantined (kept, counted, not dropped), its partition goes on, and it reaches Kafka once the topic takes it', async () => {
    const topic = `adgate-test-quarantine-${randomUUID()}`
    const admin = new Admin({ clientId: 'adgate-test', bootstrapBrokers: brokers })
    closers.push(() => admin.close())
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 })
    const spool = await openSpool('adgate-quarantine-')
    closers.push(() => spool.close())
    // Answered 200 from the spool while Kafka was away: a large batch, then a small one behind it.
    const random = () =>
      Buffer.from(
        Array.from({ length: 3000 }, () => Math.floor(Math.random() * 256)).map((b) => 97 + (b % 26)),
      )
    const large = [random(), random()]
    await spool.append(batch(topic, large))
    await spool.append(batch(topic, [Buffer.from('small-0'), Buffer.from('small-1')]))
    const largeBytes = spool.bytes - (await spool.read(0, 1 << 20))[1]!.bytes.length

    const sink = new BatchSink({
      brokers,
      clientId: 'adgate-test',
      topics: [topic],
      connection: {},
      ackTimeoutMs: 10_000,
      maxInFlight: 5,
      maxPendingBytes: 1 << 28,
      logger: recordingLogger().logger,
    })
    closers.push(() => sink.close())
    await sink.connect() // reads the default limit (1 MB)
    // Lowered while the batches wait in the spool: only the broker knows the new limit.
    await setLimit(admin, topic, 2000)

    const { lines, logger } = recordingLogger()
    const replayer = new Replayer(spool, sink, logger, 4 << 20, 500)
    closers.push(() => replayer.stop())
    replayer.start()
    await until('both spooled batches handled', () => spool.entries === 0)
    expect(replayer.stats).toMatchObject({ dropped: 0, corrupt: 0, quarantined: 2, records: 2, batches: 1 })
    expect(spool.quarantinedEntries).toBe(1)
    expect(spool.quarantinedRecords).toBe(2)
    // Still on disk, so still in the spool's bytes (the capacity it holds).
    expect(spool.bytes).toBe(largeBytes)
    const refusal = lines.find((l) => l.level === 'error')
    expect(refusal?.msg).toMatch(/kept in the spool quarantine/)
    expect(String((refusal?.obj as { err?: Error } | undefined)?.err?.message)).toMatch(/MESSAGE_TOO_LARGE/)
    const [kept] = await spool.quarantined(0, 1 << 20)
    expect(kept).toMatchObject({
      topic,
      partition: 0,
      records: 2,
      reason: expect.stringMatching(/MESSAGE_TOO_LARGE/),
    })
    // Offered again while the topic still refuses: refused again, still kept, logged once.
    await until('refused again', async () => (await spool.quarantined(0, 1 << 20))[0]!.refusals > 1)
    expect(spool.quarantinedRecords).toBe(2)
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1)

    // The operator raises the limit: the next retry hands the batch to Kafka.
    await setLimit(admin, topic, 1 << 20)
    await until('the quarantine emptied', () => spool.quarantinedEntries === 0)
    expect(replayer.stats).toMatchObject({ dropped: 0, released: 2, records: 4, batches: 2 })
    expect(spool.bytes).toBe(0)
    expect(await readValues(topic, 4)).toEqual(['small-0', 'small-1', ...large.map(String)])
    await admin.deleteTopics({ topics: [topic] })
  })
})

describe('quarantine retries', () => {
  it('skip a partition that cannot take batches now (no ack deadline spent on it) and take it once it can', async () => {
    const spool = await openSpool('adgate-quarantine-')
    closers.push(() => spool.close())
    const topic = 'adgate.impressions'
    const one = (partition: number) => batch(topic, [Buffer.from(`p${partition}`)], partition)
    await spool.append(one(0))
    await spool.append(one(1))
    // A producer that refuses everything at first, then takes everything; partition 1 can be unavailable.
    let refuse = true
    const down = new Set<number>()
    const sent: number[] = []
    const sink = {
      ready: true,
      available: (_: string, partition: number) => !down.has(partition),
      refusal: () => null,
      send: async (set: BatchSet) => {
        const partition = set.batches[0]!.partition
        sent.push(partition)
        if (down.has(partition)) throw new Error('no leader')
        return refuse ? new Map([[0, new KafkaRefusedError('refused', 'INVALID_RECORD')]]) : new Map()
      },
    } as unknown as BatchSink
    const replayer = new Replayer(spool, sink, recordingLogger().logger, 4 << 20, 100)
    closers.push(() => replayer.stop())
    replayer.start()
    await until('both quarantined', () => spool.quarantinedEntries === 2)
    down.add(1)
    refuse = false
    sent.length = 0
    await until('partition 0 taken', () => spool.quarantinedEntries === 1)
    await new Promise((r) => setTimeout(r, 400)) // a few more retry cycles
    expect(sent.filter((p) => p === 1)).toEqual([])
    expect(await spool.quarantined(0, 1 << 20)).toMatchObject([{ partition: 1 }])
    down.delete(1)
    await until('partition 1 taken', () => spool.quarantinedEntries === 0)
    expect(replayer.stats).toMatchObject({ quarantined: 2, released: 2, dropped: 0 })
  })
})
