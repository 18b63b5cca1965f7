// Funnel logs (funnel-records.ts) in a real Kafka, with @platformatic/kafka: topics created,
// records produced as the gateway writes them (acks=all, LZ4 batches), read back as stored, and
// where the topics end and a group's commits stand.
import { Admin, Consumer, ProduceAcks, Producer } from '@platformatic/kafka'
import type { SourceRecord } from '../../correlator/source.js'
import { sourceTopics, type TopicNames } from '../../correlator/topics.js'
import { ensureTopics } from '../../kafka/topics.js'
import { type Logs, PARTITIONS } from './funnel-records.js'

const clientId = 'adgate-test'

/** The correlator's storage, as far as its positions table is read. */
type PositionsTable = { query(sql: string): Promise<Record<string, unknown>[]> }

/** The correlator's stored position of every input topic-partition, by `topic:partition`. */
export async function storedPositions(storage: PositionsTable): Promise<Map<string, bigint>> {
  const stored = new Map<string, bigint>()
  for (const r of await storage.query('SELECT topic, kafka_partition, next_offset FROM positions'))
    stored.set(`${r.topic}:${r.kafka_partition}`, BigInt(r.next_offset as number))
  return stored
}

export class FunnelKafka {
  readonly admin: Admin

  constructor(readonly brokers: string[]) {
    this.admin = new Admin({ clientId, bootstrapBrokers: brokers })
  }

  /** Created, and led: a produce right after a bare CreateTopics found them unknown on a loaded broker. */
  createTopics(names: TopicNames): Promise<unknown> {
    return ensureTopics(this.admin, sourceTopics(names), { partitions: PARTITIONS, replication: 1 })
  }

  /** Every log (or the part `slice` picks of each) to its topic and partition, 500 records per batch. */
  async produce(logs: Logs, prefix: string, slice = (log: SourceRecord[]) => log): Promise<void> {
    const producer = new Producer({
      clientId,
      bootstrapBrokers: this.brokers,
      acks: ProduceAcks.ALL,
      compression: 'lz4',
      autocreateTopics: false,
      // Tests produce right after restarting a broker, which then refuses for a few seconds (3
      // retries, platformatic's default, ran out under load); a retried send appends once.
      idempotent: true,
      retries: 30,
      retryDelay: 1000,
    })
    try {
      for (const whole of logs.values()) {
        const log = slice(whole)
        for (let i = 0; i < log.length; i += 500) {
          await producer.send({
            messages: log.slice(i, i + 500).map((r) => ({
              topic: prefix + r.topic,
              partition: r.partition,
              key: r.key ?? undefined,
              value: r.value,
            })),
          })
        }
      }
    } finally {
      await producer.close()
    }
  }

  /** The next offset of every partition of `topics`, by `topic:partition`. */
  async ends(topics: string[]): Promise<Map<string, bigint>> {
    const consumer = this.consumer('adgate-test-ends')
    try {
      const out = new Map<string, bigint>()
      for (const [topic, offsets] of await consumer.listOffsets({ topics }))
        for (const [p, end] of offsets.entries()) out.set(`${topic}:${p}`, end)
      return out
    } finally {
      await consumer.close(true)
    }
  }

  /**
   * Partitions of `topics` whose position in `storage` is short of their end, as
   * 'topic:partition stored S, end E'. Positions are read before the ends: the correlator stores a
   * position only after it sent what the records below it re-keyed, so ends asked for after include
   * those records (ends asked for first could miss them and call a partition caught up too soon).
   */
  async behind(storage: PositionsTable, topics: string[]): Promise<string[]> {
    const stored = await storedPositions(storage)
    const out: string[] = []
    for (const [tp, end] of await this.ends(topics)) {
      const at = stored.get(tp) ?? 0n
      if (at < end) out.push(`${tp} stored ${at}, end ${end}`)
    }
    return out
  }

  /** Polls behind() until it is empty; after `ms`, throws naming what is behind and `state()`. */
  async caughtUp(storage: PositionsTable, topics: string[], ms = 120_000, state = () => ''): Promise<void> {
    const deadline = Date.now() + ms
    for (;;) {
      const behind = await this.behind(storage, topics)
      if (behind.length === 0) return
      if (Date.now() > deadline)
        throw new Error(
          `the correlator did not catch up within ${ms / 1000} s: ${behind.join('; ')} ${state()}`,
        )
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** The group's committed offsets, by `topic:partition`. */
  async committed(group: string): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>()
    const [offsets] = await this.admin.listConsumerGroupOffsets({ groups: [group] })
    for (const t of offsets?.topics ?? [])
      for (const p of t.partitions) out.set(`${t.name}:${p.partitionIndex}`, p.committedOffset)
    return out
  }

  /** Every record of the event topics as stored in Kafka, topic names without the prefix. */
  async readBack(names: TopicNames, prefix: string): Promise<SourceRecord[]> {
    const topics = sourceTopics(names)
    let total = 0n
    for (const end of (await this.ends(topics)).values()) total += end
    const consumer = this.consumer(`${prefix}reference`)
    const records: SourceRecord[] = []
    try {
      const offsets = topics.flatMap((topic) =>
        Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition, offset: 0n })),
      )
      const stream = await consumer.consume({ topics, mode: 'manual', offsets, autocommit: false })
      for await (const m of stream) {
        records.push({
          topic: m.topic.slice(prefix.length),
          partition: m.partition,
          offset: String(m.offset),
          key: m.key ?? null,
          value: m.value,
        })
        if (BigInt(records.length) === total) break
      }
    } finally {
      await consumer.close(true)
    }
    return records
  }

  async deleteTopics(prefix: string): Promise<void> {
    const mine = (await this.admin.listTopics()).filter((t) => t.startsWith(prefix))
    if (mine.length > 0) await this.admin.deleteTopics({ topics: mine })
  }

  async close(): Promise<void> {
    await this.admin.close()
  }

  /** A test's end: its topics (by `prefix`) and consumer `groups` deleted, then the admin closed. */
  async cleanUp(prefix: string, groups: string[]): Promise<void> {
    await this.deleteTopics(prefix)
    await this.admin.deleteGroups({ groups }).catch((err: unknown) => console.warn('cleanup', err))
    await this.close()
  }

  private consumer(groupId: string): Consumer {
    return new Consumer({ clientId, groupId, bootstrapBrokers: this.brokers })
  }
}
