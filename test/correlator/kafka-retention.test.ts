// Retention deletes records the correlator has not read (a consumer down longer than the topic's
// retention): a real broker's OFFSET_OUT_OF_RANGE, made with DeleteRecords. Two gaps: one past the
// stored positions (records never read), one between a partition's checkpoint and its stored
// position (the restart re-reads from the checkpoint, and that re-read starts inside the gap).
// The correlator must report each gap exactly, read on to the end, and never loop on the error.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { KafkaRekeyProducer, KafkaSource } from '../../correlator/kafka-source.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import type { OffsetGap } from '../../correlator/source.js'
import { inputTopics, topicNames } from '../../correlator/topics.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { FunnelKafka, storedPositions } from '../support/funnel-kafka.js'
import { funnelEvents, PARTITIONS, toLogs } from '../support/funnel-records.js'

const brokers = inject('kafkaBrokers')

type Gap = OffsetGap & { records: number; stateOnly: number }

describe.skipIf(brokers.length === 0)('correlator on Kafka, records deleted before it read them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'adgate-correlator-retention-'))
  const kafka = new FunnelKafka(brokers)
  const prefix = `t${randomBytes(4).toString('hex')}.`
  const names = topicNames(prefix)
  const topics = inputTopics(true, names)
  const groups: string[] = []
  const logs = toLogs(funnelEvents({ seed: 5, bids: 4000, duplicates: 0.05, outOfOrder: 0.1 }))

  beforeAll(async () => {
    await kafka.createTopics(names)
    await kafka.produce(logs, prefix, (log) => log.slice(0, log.length >> 1))
  }, 120_000)

  afterAll(async () => {
    await kafka.cleanUp(prefix, groups)
    rmSync(dir, { recursive: true, force: true })
  })

  const instance = (storage: DuckDbStorage, gaps: Gap[], errors: string[]) => {
    const group = `${prefix}g`
    if (!groups.includes(group)) groups.push(group)
    const source = new KafkaSource({
      brokers,
      clientId: 'adgate-test',
      groupId: group,
      topics,
      names,
      // Small fetches, so the checkpoint (written with the first write) trails the stored positions.
      maxBytesPerPartition: 8 << 10,
      retryMs: 100,
      onError: (_err, msg) => errors.push(msg),
    })
    const producer = new KafkaRekeyProducer(brokers, 'adgate-test')
    // Declaration mirrored in bench/lib/correlator-peer-child.ts: both build the correlator as the CLI does.
    const c = new Correlator(
      {
        rules: DEFAULT_RULES,
        storage,
        source,
        producer,
        names,
        checkpointMs: 3_600_000,
        idleMs: 3_600_000,
        writeEveryRecords: 500,
        lingerMs: 50,
        onGap: (gap) => gaps.push(gap),
      },
      PARTITIONS,
    )
    return {
      correlator: c,
      async start() {
        await source.partitions()
        c.start().catch((err: unknown) => console.error('correlator failed', err))
      },
      async stop() {
        await c.stop()
        await producer.close()
      },
    }
  }

  const caughtUp = (storage: DuckDbStorage) => kafka.caughtUp(storage, topics)

  it('reports each gap, reads on at the earliest offset, and catches up', async () => {
    const storage = await DuckDbStorage.open(join(dir, 'retention.duckdb'))
    const gaps: Gap[] = []
    const errors: string[] = []
    const first = instance(storage, gaps, errors)
    await first.start()
    await caughtUp(storage)
    await first.stop()
    expect(gaps).toEqual([])

    // Replay gap: impressions/0 between its checkpoint and its stored position.
    const impressions = `${names.impression}:0`
    const checkpoint = await storage.load(0, topics)
    const from = BigInt(checkpoint.checkpoint!.positions.find((p) => p.topic === names.impression)!.offset)
    const storedAt = (await storedPositions(storage)).get(impressions)!
    expect(storedAt - from, 'the checkpoint trails the stored position').toBeGreaterThan(4n)
    const replayTo = from + (storedAt - from) / 2n

    // Unread gap: bids/1, records produced while the correlator was down (its re-read starts at
    // its checkpoint, so the gap covers re-read records too).
    await kafka.produce(logs, prefix, (log) => log.slice(log.length >> 1))
    const bids = `${names.bid}:1`
    const bidsStored = (await storedPositions(storage)).get(bids)!
    const bidsCheckpoint = (await storage.load(1, topics)).checkpoint!.positions.find(
      (p) => p.topic === names.bid,
    )!
    const bidsFrom = BigInt(bidsCheckpoint.offset)
    const bidsEnd = (await kafka.ends([names.bid])).get(bids)!
    expect(bidsEnd - bidsStored).toBeGreaterThan(4n)
    const unreadTo = bidsStored + (bidsEnd - bidsStored) / 2n

    await kafka.admin.deleteRecords({
      topics: [
        { name: names.impression, partitions: [{ partition: 0, offset: replayTo }] },
        { name: names.bid, partitions: [{ partition: 1, offset: unreadTo }] },
      ],
    })

    const second = instance(storage, gaps, errors)
    await second.start()
    await caughtUp(storage)
    const lags = await second.correlator.lag()
    await second.stop()
    await storage.close()

    expect(gaps.sort((a, b) => a.topic.localeCompare(b.topic))).toEqual(
      [
        {
          topic: names.bid,
          partition: 1,
          from: bidsFrom.toString(),
          to: unreadTo.toString(),
          records: Number(unreadTo - bidsStored),
          stateOnly: Number(bidsStored - bidsFrom),
        },
        {
          topic: names.impression,
          partition: 0,
          from: from.toString(),
          to: replayTo.toString(),
          records: 0,
          stateOnly: Number(replayTo - from),
        },
      ].sort((a, b) => a.topic.localeCompare(b.topic)),
    )
    expect(lags.filter((l) => l.records !== 0)).toEqual([])
    // The out-of-range fetches were handled, not retried as failures.
    expect(errors).toEqual([])
  }, 180_000)
})
