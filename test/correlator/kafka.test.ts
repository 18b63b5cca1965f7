// The correlator against a real Kafka broker (and a real PostgreSQL): event topics of its own
// (a random prefix), re-keying through Kafka topics, a restart mid-run, two instances splitting
// the partitions, and a replay from offset 0. Every table must equal the SQL reference exactly.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { KafkaRekeyProducer, KafkaSource } from '../../correlator/kafka-source.js'
import { DEFAULT_RULES, type JoinRules } from '../../correlator/rules.js'
import type { Storage } from '../../correlator/storage.js'
import { inputTopics, type TopicNames, topicNames } from '../../correlator/topics.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { PostgresStorage } from '../../storage/postgres.js'
import { FunnelKafka } from '../support/funnel-kafka.js'
import { funnelEvents, PARTITIONS, toLogs } from '../support/funnel-records.js'
import { freshDatabase } from '../support/postgres.js'
import { type Expected, reference } from '../support/reference.js'
import { expectTables, sqlTables } from '../support/tables.js'

const brokers = inject('kafkaBrokers')
const postgresUrl = inject('postgresUrl')
const RULES: JoinRules = { ...DEFAULT_RULES, graceMs: 2 * 60_000 }
const dir = mkdtempSync(join(tmpdir(), 'adgate-correlator-kafka-'))

type SqlStorage = Storage & { query(sql: string): Promise<Record<string, unknown>[]> }

describe.skipIf(brokers.length === 0)('correlator on Kafka', () => {
  const kafka = new FunnelKafka(brokers)
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

  beforeAll(async () => {
    await kafka.createTopics(names)
    await kafka.produce(logs, prefix)
    groups.push(`${prefix}reference`)
    expected = await reference(await kafka.readBack(names, prefix), RULES)
    expect(expected.late.length).toBeGreaterThan(0)
    expect(expected.conversions.some((c) => c.attributed)).toBe(true)
  }, 120_000)

  afterAll(async () => {
    await kafka.cleanUp(prefix, groups)
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
      // Stopped after a few writes: small fetches, so most records are still unread then (the
      // consumer hands over whole responses, and two of the default size hold this whole funnel).
      ...(Number.isFinite(stopAfterBatches) ? { maxBytesPerPartition: 16 << 10 } : {}),
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
      const committed = await kafka.committed(group)
      for (const [tp, end] of await kafka.ends(inputTopics(true, n)))
        if ((committed.get(tp) ?? -1n) < end) behind.push(`${tp} ${committed.get(tp)}/${end}`)
      if (behind.length === 0) return
      if (i === 599)
        throw new Error(`group ${group} did not read to the end within 120 s: ${behind.join(', ')}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** Until every input topic-partition's stored position is its end offset. */
  const caughtUp = (storage: SqlStorage, n: TopicNames = names) =>
    kafka.caughtUp(storage, inputTopics(true, n))

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
        await kafka.createTopics(names2)
        const one = instance(a, group, Number.POSITIVE_INFINITY, names2)
        const two = instance(b, group, Number.POSITIVE_INFINITY, names2)
        await one.start()
        await two.start()
        // Both own partitions before any event exists, so both have work to do. A rebalance ends
        // member by member: the first to get its SyncGroup answer owns its share while the other
        // still holds the old one (a CI run saw [0,1,2,3] and [0,2]; storage writes are fenced), so
        // wait for the split to settle, then check it is whole and disjoint.
        const settled = () => {
          const [a, b] = [one.assigned().length, two.assigned().length]
          return a > 0 && b > 0 && a + b === PARTITIONS
        }
        while (!settled()) await new Promise((r) => setTimeout(r, 100))
        expect([...one.assigned(), ...two.assigned()].sort()).toEqual([0, 1, 2, 3])
        await kafka.produce(logs, prefix2)
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
