// The correlator against a real Kafka broker (and a real PostgreSQL): event topics of its own
// (a random prefix), re-keying through Kafka topics, a restart mid-run, two instances splitting
// the partitions, and a replay from offset 0. Every table must equal the SQL reference exactly.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import kafkajs from 'kafkajs'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { KafkaRekeyProducer, KafkaSource } from '../../correlator/kafka-source.js'
import { DEFAULT_RULES, type JoinRules } from '../../correlator/rules.js'
import type { SourceRecord } from '../../correlator/source.js'
import type { Storage } from '../../correlator/storage.js'
import { inputTopics, sourceTopics, type TopicNames, topicNames } from '../../correlator/topics.js'
import { registerLz4Codec } from '../../kafka/lz4-codec.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { PostgresStorage } from '../../storage/postgres.js'
import { funnelEvents, type Logs, PARTITIONS, toLogs } from '../support/funnel-records.js'
import { freshDatabase } from '../support/postgres.js'
import { type Expected, reference } from '../support/reference.js'
import { expectTables, sqlTables } from '../support/tables.js'

const { Kafka, logLevel, CompressionTypes } = kafkajs
const brokers = inject('kafkaBrokers')
const postgresUrl = inject('postgresUrl')
const RULES: JoinRules = { ...DEFAULT_RULES, graceMs: 2 * 60_000 }
const dir = mkdtempSync(join(tmpdir(), 'adgate-correlator-kafka-'))

type SqlStorage = Storage & { query(sql: string): Promise<Record<string, unknown>[]> }

describe.skipIf(brokers.length === 0)('correlator on Kafka', () => {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  const prefix = `t${randomBytes(4).toString('hex')}.`
  const names = topicNames(prefix)
  // The two-instance test gets topics of its own, filled only once both instances own partitions.
  const prefix2 = `${prefix}two.`
  const names2 = topicNames(prefix2)
  const groups: string[] = []
  let expected: Expected

  const logs = toLogs(
    funnelEvents({ seed: 41, bids: 8000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02, botClicks: 0.2 }),
  )
  const createTopics = (n: TopicNames) =>
    admin.createTopics({
      waitForLeaders: true,
      topics: sourceTopics(n).map((topic) => ({ topic, numPartitions: PARTITIONS })),
    })

  beforeAll(async () => {
    registerLz4Codec()
    await admin.connect()
    await createTopics(names)
    await produce(kafka, logs, prefix)
    expected = await reference(await readBack(kafka, names, prefix), RULES)
    expect(expected.late.length).toBeGreaterThan(0)
    expect(expected.conversions.some((c) => c.attributed)).toBe(true)
  }, 120_000)

  afterAll(async () => {
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(prefix))
    if (mine.length > 0) await admin.deleteTopics({ topics: mine })
    await admin.deleteGroups(groups).catch((err: Error) => console.warn(`cleanup: ${err.message}`))
    await admin.disconnect()
    rmSync(dir, { recursive: true, force: true })
  })

  const instance = (
    storage: Storage,
    group: string,
    stopAfterBatches = Number.POSITIVE_INFINITY,
    n: TopicNames = names,
  ) => {
    const source = new KafkaSource({
      brokers,
      clientId: 'adgate-test',
      groupId: group,
      topics: inputTopics(true, n),
      names: n,
    })
    const producer = new KafkaRekeyProducer(brokers, 'adgate-test')
    let batches = 0
    const c = new Correlator(
      {
        rules: RULES,
        storage,
        source,
        producer,
        names: n,
        checkpointMs: 200,
        idleMs: 3_600_000,
        writeEveryRecords: 3000,
        lingerMs: 100,
        onBatch: () => {
          if (++batches === stopAfterBatches) c.kill() // as kill -9: nothing pending is written
        },
      },
      PARTITIONS,
    )
    return {
      correlator: c,
      batches: () => batches,
      assigned: () => source.assigned(),
      async start() {
        await source.partitions()
        c.start().catch((err: unknown) => console.error('correlator failed', err))
      },
      async stop() {
        await c.stop() // after kill(): only the consumer is closed
        await producer.close()
      },
    }
  }

  /** Polls until the group has committed the end offset of every input topic-partition. */
  const groupCaughtUp = async (group: string, n: TopicNames = names) => {
    for (let i = 0; i < 600; i++) {
      const behind: string[] = []
      for (const topic of inputTopics(true, n)) {
        const ends = await admin.fetchTopicOffsets(topic)
        const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
        for (const p of ends) {
          const c = committed!.partitions.find((x) => x.partition === p.partition)
          if (Number(c?.offset ?? -1) < Number(p.high))
            behind.push(`${topic}:${p.partition} ${c?.offset}/${p.high}`)
        }
      }
      if (behind.length === 0) return
      if (i === 599)
        throw new Error(`group ${group} did not read to the end within 120 s: ${behind.join(', ')}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** Polls until every input topic-partition's stored position is its end offset. */
  const caughtUp = async (storage: SqlStorage, n: TopicNames = names) => {
    for (let i = 0; i < 600; i++) {
      const stored = new Map<string, number>()
      for (const r of await storage.query('SELECT topic, kafka_partition, next_offset FROM positions'))
        stored.set(`${r.topic}:${r.kafka_partition}`, Number(r.next_offset))
      let behind = false
      for (const topic of inputTopics(true, n))
        for (const p of await admin.fetchTopicOffsets(topic))
          if ((stored.get(`${topic}:${p.partition}`) ?? 0) < Number(p.high)) behind = true
      if (!behind) return
      await new Promise((r) => setTimeout(r, 200))
    }
    throw new Error('the correlator did not catch up within 120 s')
  }

  it('one instance, DuckDB, stopped mid-run and restarted, then a replay from offset 0: tables equal the reference', async () => {
    const storage = await DuckDbStorage.open(join(dir, 'one.duckdb'))
    const group = `${prefix}one`
    groups.push(group)
    const first = instance(storage, group, 2)
    await first.start()
    while (first.batches() < 2) await new Promise((r) => setTimeout(r, 50))
    // The lag metrics' view, against the broker's high watermarks: most of the topics wait.
    const behind = await first.correlator.lag()
    expect(behind.reduce((n, l) => n + l.records, 0)).toBeGreaterThan(0)
    await first.stop()
    const second = instance(storage, group)
    await second.start()
    await caughtUp(storage)
    const lags = await second.correlator.lag()
    expect(lags.length).toBe(inputTopics(true, names).length * PARTITIONS)
    expect(lags.filter((l) => l.records !== 0 || l.seconds !== 0)).toEqual([])
    await second.stop()
    expectTables(await sqlTables((sql) => storage.query(sql), prefix), expected)

    // A new consumer group reads every topic from offset 0 into the same tables.
    const replayGroup = `${prefix}replay`
    groups.push(replayGroup)
    const replay = instance(storage, replayGroup)
    await replay.start()
    await groupCaughtUp(replayGroup)
    await replay.stop()
    expectTables(await sqlTables((sql) => storage.query(sql), prefix), expected)
    await storage.close()
  }, 180_000)

  it.skipIf(!postgresUrl)(
    'two instances in one group split the partitions over PostgreSQL: tables equal the reference',
    async () => {
      const db = await freshDatabase(postgresUrl)
      const a = await PostgresStorage.open(db.url)
      const b = await PostgresStorage.open(db.url)
      try {
        const group = `${prefix}two`
        groups.push(group)
        await createTopics(names2)
        const one = instance(a, group, Number.POSITIVE_INFINITY, names2)
        const two = instance(b, group, Number.POSITIVE_INFINITY, names2)
        await one.start()
        await two.start()
        // Both own partitions before any event exists, so both have work to do.
        while (one.assigned().length === 0 || two.assigned().length === 0)
          await new Promise((r) => setTimeout(r, 100))
        expect([...one.assigned(), ...two.assigned()].sort()).toEqual([0, 1, 2, 3])
        await produce(kafka, logs, prefix2)
        await caughtUp(a, names2)
        expect(one.batches()).toBeGreaterThan(0)
        expect(two.batches()).toBeGreaterThan(0)
        await one.stop()
        await two.stop()
        expectTables(await sqlTables((sql) => a.query(sql), prefix2), expected)
      } finally {
        await a.close()
        await b.close()
        await db.drop()
      }
    },
    180_000,
  )
})

async function produce(kafka: kafkajs.Kafka, logs: Logs, prefix: string): Promise<void> {
  const producer = kafka.producer()
  await producer.connect()
  try {
    for (const log of logs.values()) {
      for (let i = 0; i < log.length; i += 500) {
        await producer.send({
          topic: prefix + log[0]!.topic,
          acks: -1,
          compression: CompressionTypes.LZ4,
          messages: log
            .slice(i, i + 500)
            .map((r) => ({ partition: r.partition, key: r.key, value: r.value })),
        })
      }
    }
  } finally {
    await producer.disconnect()
  }
}

/** Every record of the event topics as stored in Kafka, topic names without the prefix. */
async function readBack(kafka: kafkajs.Kafka, names: TopicNames, prefix: string): Promise<SourceRecord[]> {
  const admin = kafka.admin()
  await admin.connect()
  let total = 0
  for (const t of sourceTopics(names))
    for (const p of await admin.fetchTopicOffsets(t)) total += Number(p.high)
  await admin.disconnect()
  const consumer = kafka.consumer({ groupId: `${prefix}reference` })
  const records: SourceRecord[] = []
  await consumer.connect()
  await consumer.subscribe({ topics: sourceTopics(names), fromBeginning: true })
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        records.push({
          topic: topic.slice(prefix.length),
          partition,
          offset: message.offset,
          key: message.key,
          value: message.value!,
        })
        if (records.length === total) resolve()
      },
    })
  })
  await consumer.disconnect()
  await kafka
    .admin()
    .deleteGroups([`${prefix}reference`])
    .catch(() => {})
  return records
}
