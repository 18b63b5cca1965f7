// The correlator's consumer when its broker goes away mid-stream: a private broker (second-broker.ts)
// is restarted while the correlator reads, so fetches, heartbeats, commits and re-key sends fail
// for seconds; then the rest of the events arrive. Every record must be handed to the correlator
// exactly once and the tables must equal the SQL reference: no gap, no duplicate.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { KafkaRekeyProducer, KafkaSource } from '../../correlator/kafka-source.js'
import { DEFAULT_RULES, type JoinRules } from '../../correlator/rules.js'
import type { EventSource, SourceRecord } from '../../correlator/source.js'
import { inputTopics, topicNames } from '../../correlator/topics.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { FunnelKafka } from '../support/funnel-kafka.js'
import { funnelEvents, toLogs } from '../support/funnel-records.js'
import { type Expected, reference } from '../support/reference.js'
import { acquireSecondBroker, type SecondBroker } from '../support/second-broker.js'
import { expectTables, sqlTables } from '../support/tables.js'

const RULES: JoinRules = { ...DEFAULT_RULES, graceMs: 2 * 60_000 }

describe('correlator on Kafka, its broker restarted mid-stream', () => {
  const dir = mkdtempSync(join(tmpdir(), 'adgate-correlator-restart-'))
  const prefix = `t${randomBytes(4).toString('hex')}.`
  const names = topicNames(prefix)
  const logs = toLogs(funnelEvents({ seed: 7, bids: 3000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02 }))
  let broker: SecondBroker
  let kafka: FunnelKafka
  let expected: Expected

  beforeAll(async () => {
    broker = await acquireSecondBroker()
    await broker.start()
    kafka = new FunnelKafka(broker.brokers)
    await kafka.createTopics(names)
    // The first half now, the rest once the broker is back: reading must go on after the restart.
    await kafka.produce(logs, prefix, (log) => log.slice(0, log.length >> 1))
  }, 120_000)

  afterAll(async () => {
    await kafka?.close().catch(() => {})
    await broker?.release()
    rmSync(dir, { recursive: true, force: true })
  })

  it('hands every record over once and the tables equal the reference', async () => {
    const storage = await DuckDbStorage.open(join(dir, 'restart.duckdb'))
    const errors: string[] = []
    const kafkaSource = new KafkaSource({
      brokers: broker.brokers,
      clientId: 'adgate-test',
      groupId: `${prefix}restart`,
      topics: inputTopics(true, names),
      names,
      // Small fetches: the stream is still reading when the broker goes.
      maxBytesPerPartition: 16 << 10,
      retryMs: 200,
      onError: (err, msg) => errors.push(`${msg}: ${(err as Error)?.message}`),
    })
    const handedOver = new Map<string, number>()
    let batches = 0
    let restarted: Promise<unknown> | undefined
    let restartDone = false
    let afterRestart = 0
    let lastBatchAt = Date.now()
    const source: EventSource = {
      partitions: () => kafkaSource.partitions(),
      start: (h) =>
        kafkaSource.start({
          ...h,
          onBatch: (records: SourceRecord[]) => {
            for (const r of records) {
              const k = `${r.topic}:${r.partition}:${r.offset}`
              handedOver.set(k, (handedOver.get(k) ?? 0) + 1)
            }
            if (restartDone) afterRestart += records.length
            lastBatchAt = Date.now()
            // Broken mid-stream: stopped (SIGTERM) and started again on the same data dir.
            if (++batches === 2)
              restarted = broker
                .stop()
                .then(() => broker.start())
                .then(() => {
                  restartDone = true
                })
            return h.onBatch(records)
          },
        }),
      commit: (p) => kafkaSource.commit(p),
      seek: (p) => kafkaSource.seek(p),
      stop: () => kafkaSource.stop(),
      close: () => kafkaSource.close(),
    }
    const producer = new KafkaRekeyProducer(broker.brokers, 'adgate-test')
    const correlator = new Correlator(
      {
        rules: RULES,
        storage,
        source,
        producer,
        names,
        checkpointMs: 200,
        idleMs: 3_600_000,
        writeEveryRecords: 1000,
        lingerMs: 50,
        onWarn: (msg, err) => errors.push(`${msg}: ${err?.message}`),
      },
      await source.partitions(),
    )
    const running = correlator.start()
    try {
      await running
      while (restarted === undefined) await new Promise((r) => setTimeout(r, 50))
      await restarted
      await kafka.produce(logs, prefix, (log) => log.slice(log.length >> 1))
      expected = await reference(await kafka.readBack(names, prefix), RULES)

      // On failure: what was handed over per partition against what is stored, and what the
      // consumer and the correlator reported, so a stall names its side (no fetch, or no write).
      await kafka.caughtUp(storage, inputTopics(true, names), 120_000, () => {
        const read = new Map<string, number>()
        for (const k of handedOver.keys()) {
          const tp = k.slice(0, k.lastIndexOf(':'))
          read.set(tp, (read.get(tp) ?? 0) + 1)
        }
        return (
          `; handed over ${JSON.stringify(Object.fromEntries(read))} in ${batches} batches (the last ` +
          `${Date.now() - lastBatchAt} ms ago, ${afterRestart} records after the restart); assigned ` +
          `${JSON.stringify(kafkaSource.assigned())}; reader ${JSON.stringify(kafkaSource.readerState())}; ` +
          `reported ${JSON.stringify(errors)}`
        )
      })
    } finally {
      await correlator.stop()
      await producer.close()
    }
    // The stream went on across the restart (the second half is produced after it). Whether the
    // consumer had a request in flight when the broker went, and so reported an error, depends on
    // timing (whole fetch responses are read ahead), so its reports are shown, not asserted.
    expect(afterRestart, `errors the consumer reported: ${JSON.stringify(errors)}`).toBeGreaterThan(0)
    // Exactly once: every offset below each partition's end, none twice.
    const twice = [...handedOver].filter(([, n]) => n > 1).map(([k]) => k)
    expect(twice).toEqual([])
    const ends = await kafka.ends(inputTopics(true, names))
    const missing: string[] = []
    for (const [tp, end] of ends)
      for (let o = 0n; o < end; o++) if (!handedOver.has(`${tp}:${o}`)) missing.push(`${tp}:${o}`)
    expect(missing).toEqual([])
    expectTables(await sqlTables((sql) => storage.query(sql), prefix), expected)
    await storage.close()
  }, 240_000)
})
