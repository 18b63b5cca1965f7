import kafkajs, { type Admin, type Consumer, type Producer } from 'kafkajs'
import { registerLz4Codec } from '../kafka/lz4-codec.js'
import { QUALITY_FLAGS_HEADER } from '../kafka/protocol/record-batch.js'
import type { RekeyProducer } from './correlator.js'
import type { OutgoingRecord } from './pipeline.js'
import type { EventSource, PartitionEnd, Position, SourceHandlers, SourceRecord } from './source.js'
import { sourceTopics, type TopicNames, topicNames } from './topics.js'

const { Kafka, logLevel, AssignerProtocol } = kafkajs

export interface KafkaSourceOptions {
  brokers: string[]
  clientId: string
  groupId: string
  topics: string[]
  /** Partitions of event topics this source creates when they do not exist yet (default 4). */
  createPartitions?: number
  /** Names of the event topics and the re-keyed ones (default adgate's). */
  names?: TopicNames
  /** Records per partition fetched at once (kafkajs maxBytesPerPartition). */
  maxBytesPerPartition?: number
  onLog?: (level: string, msg: string) => void
}

/**
 * Partition p of every topic goes to the same member, so stage inputs keyed alike meet on one
 * instance (Kafka Streams' co-partitioning). Members are sorted for a stable assignment.
 */
const CoPartitionAssigner: kafkajs.PartitionAssigner = ({ cluster }) => ({
  name: 'adgate-copartitioned',
  version: 1,
  async assign({ members, topics }) {
    const ids = members.map((m) => m.memberId).sort()
    const plan = new Map<string, Record<string, number[]>>(ids.map((id) => [id, {}]))
    for (const topic of topics) {
      for (const meta of cluster.findTopicPartitionMetadata(topic)) {
        const member = plan.get(ids[meta.partitionId % ids.length]!)!
        const list = member[topic] ?? []
        list.push(meta.partitionId)
        member[topic] = list
      }
    }
    return ids.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 1,
        assignment: plan.get(memberId)!,
        userData: Buffer.alloc(0),
      }),
    }))
  },
  protocol({ topics }) {
    return {
      name: 'adgate-copartitioned',
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
    }
  },
})

/** A kafkajs consumer group over the event topics (and the correlator's own re-keyed topics). */
export class KafkaSource implements EventSource {
  private readonly kafka: kafkajs.Kafka
  private readonly consumer: Consumer
  private owned = new Set<number>()
  private admin: Admin | undefined
  /** For the lag metrics' end offsets; apart from `admin`, which topic creation connects and closes. */
  private offsetsAdmin: Promise<Admin> | undefined

  constructor(private readonly o: KafkaSourceOptions) {
    registerLz4Codec()
    this.kafka = new Kafka({
      brokers: o.brokers,
      clientId: o.clientId,
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => o.onLog?.(String(entry.level), entry.log.message),
    })
    this.consumer = this.kafka.consumer({
      groupId: o.groupId,
      partitionAssigners: [CoPartitionAssigner],
      maxBytesPerPartition: o.maxBytesPerPartition ?? 4 << 20,
      sessionTimeout: 30_000,
      rebalanceTimeout: 60_000,
    })
  }

  /** Creates missing topics (event topics with `partitions`, re-keyed ones with the same count). */
  async partitions(): Promise<number> {
    this.admin ??= this.kafka.admin()
    await this.admin.connect()
    try {
      const names = this.o.names ?? topicNames()
      const source = sourceTopics(names)
      const existing = new Set(await this.admin.listTopics())
      // The gateway creates the event topics; a correlator started first creates them the same way.
      await this.create(
        source.filter((t) => !existing.has(t)),
        this.o.createPartitions ?? 4,
      )
      const meta = await this.admin.fetchTopicMetadata({ topics: source })
      const counts = new Set(meta.topics.map((t) => t.partitions.length))
      if (counts.size !== 1)
        throw new Error(
          `adgate's event topics must have equal partition counts, got ${[...counts].join(', ')}`,
        )
      const n = [...counts][0]!
      const rekeyed = [names.rekeyedImpressions, names.rekeyedClicks]
      await this.create(
        rekeyed.filter((t) => this.o.topics.includes(t) && !existing.has(t)),
        n,
      )
      return n
    } finally {
      await this.admin.disconnect()
    }
  }

  private async create(topics: string[], partitions: number): Promise<void> {
    if (topics.length === 0) return
    await this.admin!.createTopics({
      waitForLeaders: true,
      topics: topics.map((topic) => ({ topic, numPartitions: partitions })),
    }).catch((err: Error) => {
      // Another instance created it first.
      if (!/already exists/i.test(err.message)) throw err
    })
  }

  async start(h: SourceHandlers): Promise<void> {
    const c = this.consumer
    c.on(c.events.GROUP_JOIN, (e) => {
      const now = new Set<number>()
      for (const parts of Object.values(e.payload.memberAssignment)) for (const p of parts) now.add(p)
      const gone = [...this.owned].filter((p) => !now.has(p))
      this.owned = now
      if (gone.length > 0 && h.onRevoke) void h.onRevoke(gone.map((partition) => ({ topic: '*', partition })))
    })
    await c.connect()
    await c.subscribe({ topics: this.o.topics, fromBeginning: true })
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return
        const records: SourceRecord[] = new Array(batch.messages.length)
        for (let i = 0; i < batch.messages.length; i++) {
          const m = batch.messages[i]!
          records[i] = {
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            key: m.key,
            value: m.value ?? Buffer.alloc(0),
            timestamp: Number(m.timestamp),
            flags: m.headers?.[QUALITY_FLAGS_HEADER]?.toString() ?? null,
          }
        }
        await h.onBatch(records)
        resolveOffset(batch.lastOffset())
        await heartbeat()
      },
    })
  }

  /** Partition numbers this member owns since the last rebalance. */
  assigned(): number[] {
    return [...this.owned].sort((a, b) => a - b)
  }

  async commit(positions: Position[]): Promise<void> {
    await this.consumer.commitOffsets(positions.map((p) => ({ ...p })))
  }

  async seek(positions: Position[]): Promise<void> {
    for (const p of positions) this.consumer.seek(p)
  }

  /** Each input partition's high watermark, asked of the brokers (not the last fetch: a stuck consumer fetches nothing). */
  async ends(): Promise<PartitionEnd[]> {
    this.offsetsAdmin ??= (async () => {
      const admin = this.kafka.admin()
      await admin.connect()
      return admin
    })()
    const admin = await this.offsetsAdmin.catch((err: unknown) => {
      this.offsetsAdmin = undefined
      throw err
    })
    const ends: PartitionEnd[] = []
    for (const topic of this.o.topics) {
      for (const p of await admin.fetchTopicOffsets(topic))
        ends.push({ topic, partition: p.partition, end: BigInt(p.high) })
    }
    return ends
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect()
    if (this.offsetsAdmin) await (await this.offsetsAdmin.catch(() => null))?.disconnect()
  }
}

/** Produces re-keyed records to the correlator's own topics, acks=all. */
export class KafkaRekeyProducer implements RekeyProducer {
  private readonly producer: Producer
  private connected: Promise<void> | undefined

  constructor(brokers: string[], clientId: string) {
    const kafka = new Kafka({ brokers, clientId, logLevel: logLevel.NOTHING })
    this.producer = kafka.producer({ allowAutoTopicCreation: false })
  }

  async send(records: OutgoingRecord[]): Promise<void> {
    this.connected ??= this.producer.connect()
    await this.connected
    const byTopic = new Map<string, { partition: number; key: Buffer | null; value: Buffer }[]>()
    for (const r of records) {
      let list = byTopic.get(r.topic)
      if (list === undefined) {
        list = []
        byTopic.set(r.topic, list)
      }
      list.push({ partition: r.partition, key: r.key, value: r.value })
    }
    await this.producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    })
  }

  async close(): Promise<void> {
    if (this.connected) await this.producer.disconnect()
  }
}
