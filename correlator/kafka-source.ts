import {
  Admin,
  type CredentialProvider,
  type MessageToProduce,
  ProduceAcks,
  Producer,
} from '@platformatic/kafka'
import kafkajs, {
  type Consumer,
  type KafkaConfig,
  type Admin as KafkajsAdmin,
  type SASLOptions,
} from 'kafkajs'
import type { KafkaConnectionOptions } from '../kafka/client-options.js'
import { registerLz4Codec } from '../kafka/lz4-codec.js'
import { QUALITY_FLAGS_HEADER } from '../kafka/protocol/record-batch.js'
import { ensureTopics, type TopicSettings } from '../kafka/topics.js'
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
  /** TLS and SASL (kafka/client-options.ts), the same for every adgate Kafka client */
  connection?: KafkaConnectionOptions
  /** replication, min.insync.replicas and retention of the topics it creates (ADGATE_TOPIC_*) */
  topicSettings?: Omit<TopicSettings, 'partitions'>
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
  /** For the lag metrics' end offsets, connected once (topic creation uses an Admin of its own). */
  private offsetsAdmin: Promise<KafkajsAdmin> | undefined

  constructor(private readonly o: KafkaSourceOptions) {
    registerLz4Codec()
    this.kafka = new Kafka({
      brokers: o.brokers,
      clientId: o.clientId,
      ...kafkajsSecurity(o.connection ?? {}),
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

  /**
   * Creates missing topics (event topics with `partitions`, re-keyed ones with the same count) as
   * the gateway does (kafka/topics.ts: replication and min.insync.replicas for the cluster size).
   */
  async partitions(): Promise<number> {
    const admin = new Admin({
      clientId: this.o.clientId,
      bootstrapBrokers: this.o.brokers,
      ...this.o.connection,
    })
    try {
      const names = this.o.names ?? topicNames()
      const source = sourceTopics(names)
      // The gateway creates the event topics; a correlator started first creates them the same way.
      const settings = { ...this.o.topicSettings, partitions: this.o.createPartitions ?? 4 }
      await ensureTopics(admin, source, settings)
      const meta = await admin.metadata({ topics: source, forceUpdate: true })
      const counts = new Set(source.map((t) => meta.topics.get(t)?.partitionsCount))
      if (counts.size !== 1)
        throw new Error(
          `adgate's event topics must have equal partition counts, got ${[...counts].join(', ')}`,
        )
      const n = [...counts][0]!
      const rekeyed = [names.rekeyedImpressions, names.rekeyedClicks]
      await ensureTopics(
        admin,
        rekeyed.filter((t) => this.o.topics.includes(t)),
        { ...settings, partitions: n },
      )
      return n
    } finally {
      await admin.close()
    }
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

/**
 * The shared security options in kafkajs's form (the consumer group still runs on kafkajs).
 * Credentials stay providers: kafkajs reads `password` at each authentication, so a getter
 * re-reads a rotated password file, and an OAUTHBEARER token is asked for each time.
 */
export function kafkajsSecurity(c: KafkaConnectionOptions): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {}
  if (c.tls) out.ssl = c.tls
  const sasl = c.sasl
  if (!sasl) return out
  const read = (v: string | CredentialProvider | undefined) => (typeof v === 'function' ? v() : (v ?? ''))
  if (sasl.mechanism === 'OAUTHBEARER') {
    out.sasl = {
      mechanism: 'oauthbearer',
      oauthBearerProvider: async () => ({ value: await read(sasl.token) }),
    }
    return out
  }
  const mechanism = (
    { PLAIN: 'plain', 'SCRAM-SHA-256': 'scram-sha-256', 'SCRAM-SHA-512': 'scram-sha-512' } as const
  )[sasl.mechanism as 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512']
  const username = String(read(sasl.username))
  // A getter, not a value: kafkajs reads it at each authentication (the union type needs the cast).
  out.sasl = {
    mechanism,
    username,
    get password(): string {
      const password = read(sasl.password)
      if (typeof password !== 'string')
        throw new Error('an asynchronous SASL password provider is not supported here')
      return password
    },
  } as SASLOptions
  return out
}

/** Produces re-keyed records to the correlator's own topics, acks=all, on @platformatic/kafka. */
export class KafkaRekeyProducer implements RekeyProducer {
  private readonly producer: Producer

  constructor(brokers: string[], clientId: string, connection: KafkaConnectionOptions = {}) {
    this.producer = new Producer({
      clientId,
      bootstrapBrokers: brokers,
      acks: ProduceAcks.ALL,
      autocreateTopics: false,
      ...connection,
    })
  }

  async send(records: OutgoingRecord[]): Promise<void> {
    const messages = new Array<MessageToProduce>(records.length)
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!
      messages[i] = { topic: r.topic, partition: r.partition, key: r.key ?? undefined, value: r.value }
    }
    await this.producer.send({ messages })
  }

  async close(): Promise<void> {
    await this.producer.close()
  }
}
