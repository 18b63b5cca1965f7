// A clean stop (SIGTERM) of the correlator on a real broker: its last write commits the group's
// offsets through the consumer, so the consumer must still be open then. Nothing is written
// before the stop (long linger), so the stop's write is the only one and its commit the only one.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { KafkaSource } from '../../correlator/kafka-source.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import type { EventSource } from '../../correlator/source.js'
import { inputTopics, topicNames } from '../../correlator/topics.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { FunnelKafka, storedPositions } from '../support/funnel-kafka.js'
import { funnelEvents, PARTITIONS, toLogs } from '../support/funnel-records.js'

const brokers = inject('kafkaBrokers')

describe.skipIf(brokers.length === 0)('correlator on Kafka, stopped cleanly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'adgate-correlator-clean-stop-'))
  const kafka = new FunnelKafka(brokers)
  const prefix = `t${randomBytes(4).toString('hex')}.`
  const names = topicNames(prefix)
  const topics = inputTopics(false, names)
  const group = `${prefix}stop`

  beforeAll(async () => {
    await kafka.createTopics(names)
    await kafka.produce(toLogs(funnelEvents({ seed: 11, bids: 1000 })), prefix)
  }, 120_000)

  afterAll(async () => {
    await kafka.cleanUp(prefix, [group])
    rmSync(dir, { recursive: true, force: true })
  })

  it("commits its last write's positions before it closes the consumer", async () => {
    const storage = await DuckDbStorage.open(join(dir, 'stop.duckdb'))
    const errors: string[] = []
    const kafkaSource = new KafkaSource({
      brokers,
      clientId: 'adgate-test',
      groupId: group,
      topics,
      names,
      onError: (err, msg) => errors.push(`${msg}: ${String(err)}`),
    })
    // The next offset of every topic-partition handed over to the correlator.
    const read = new Map<string, bigint>()
    const source: EventSource = {
      partitions: () => kafkaSource.partitions(),
      start: (h) =>
        kafkaSource.start({
          ...h,
          onBatch: (records) => {
            for (const r of records) read.set(`${r.topic}:${r.partition}`, BigInt(r.offset) + 1n)
            return h.onBatch(records)
          },
        }),
      commit: (p) => kafkaSource.commit(p),
      seek: (p) => kafkaSource.seek(p),
      stop: () => kafkaSource.stop(),
      close: () => kafkaSource.close(),
    }
    const correlator = new Correlator(
      {
        rules: DEFAULT_RULES,
        storage,
        source,
        names,
        checkpointMs: 0,
        idleMs: 3_600_000,
        writeEveryRecords: Number.MAX_SAFE_INTEGER,
        lingerMs: 3_600_000,
      },
      await source.partitions(),
    )
    correlator.start().catch((err: unknown) => errors.push(`correlator failed: ${String(err)}`))
    const ends = await kafka.ends(topics)
    expect(ends.size).toBe(topics.length * PARTITIONS)
    const behind = () => [...ends].filter(([tp, end]) => (read.get(tp) ?? 0n) < end)
    for (let i = 0; i < 600 && behind().length > 0; i++) await new Promise((r) => setTimeout(r, 200))
    expect(behind()).toEqual([])
    expect(await kafka.committed(group), 'nothing committed before the stop').toEqual(new Map())

    await correlator.stop()

    const stored = await storedPositions(storage)
    await storage.close()
    // Positions are stored for partitions that had records (the checkpoints cover every one).
    expect(stored).toEqual(new Map([...ends].filter(([, end]) => end > 0n)))
    // A restart reads nothing already applied: the group resumes at the end of what was read.
    expect(await kafka.committed(group)).toEqual(ends)
    expect(errors).toEqual([])
  }, 180_000)
})
