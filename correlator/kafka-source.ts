import {
  Admin,
  ConnectionPool,
  Consumer,
  type GroupPartitionsAssigner,
  type GroupPartitionsAssignments,
  type MessageToProduce,
  ProduceAcks,
  Producer,
} from '@platformatic/kafka'
import { kafkaApiCodes } from '../kafka/api-codes.js'
import type { KafkaConnectionOptions } from '../kafka/client-options.js'
import { QUALITY_FLAGS_HEADER } from '../kafka/protocol/record-batch.js'
import { type FetchedRecord, type GroupConsumer, ResumingConsumer } from '../kafka/resuming-consumer.js'
import { ensureTopics, type TopicSettings } from '../kafka/topics.js'
import type { RekeyProducer } from './correlator.js'
import type { OutgoingRecord } from './pipeline.js'
import {
  type EventSource,
  type PartitionEnd,
  type Position,
  type SourceHandlers,
  type SourceRecord,
  tpKey,
} from './source.js'
import { sourceTopics, type TopicNames, topicNames } from './topics.js'

export interface KafkaSourceOptions {
  brokers: string[]
  clientId: string
  groupId: string
  topics: string[]
  /** Partitions of event topics this source creates when they do not exist yet (default 4). */
  createPartitions?: number
  /** Names of the event topics and the re-keyed ones (default adgate's). */
  names?: TopicNames
  /** Bytes per partition fetched at once (default 256 KiB). */
  maxBytesPerPartition?: number
  /** TLS and SASL (kafka/client-options.ts), the same for every adgate Kafka client */
  connection?: KafkaConnectionOptions
  /** replication, min.insync.replicas and retention of the topics it creates (ADGATE_TOPIC_*) */
  topicSettings?: Omit<TopicSettings, 'partitions'>
  /** Wait before a failed fetch, batch or group join is tried again (default 1 s). */
  retryMs?: number
  onError?: (err: unknown, msg: string) => void
}

/** The group protocol's name, as the kafkajs members before used it (a mixed group during an upgrade). */
const ASSIGNER = 'adgate-copartitioned'

/**
 * Partition p of every topic goes to the same member, so stage inputs keyed alike meet on one
 * instance (Kafka Streams' co-partitioning). Members are sorted for a stable assignment.
 */
export const coPartitionAssigner: GroupPartitionsAssigner = (_current, members, topics, metadata) => {
  const ids = [...members.keys()].sort()
  const plan = new Map<string, GroupPartitionsAssignments>(
    ids.map((memberId) => [memberId, { memberId, assignments: new Map() }]),
  )
  for (const topic of topics) {
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0
    for (let p = 0; p < count; p++) {
      const member = plan.get(ids[p % ids.length]!)!
      const entry = member.assignments.get(topic) ?? { topic, partitions: [] }
      entry.partitions.push(p)
      member.assignments.set(topic, entry)
    }
  }
  return [...plan.values()]
}

/**
 * A consumer group over the event topics (and the correlator's own re-keyed topics) on
 * @platformatic/kafka, read through kafka/resuming-consumer.ts. Nothing is committed by itself:
 * only the positions the correlator hands to commit() after its write.
 */
export class KafkaSource implements EventSource {
  private readonly consumer: Consumer
  /** Fetches long-poll: on connections of their own, never in front of a heartbeat or a commit. */
  private readonly fetchPool: ConnectionPool
  private readonly reader: ResumingConsumer<SourceRecord>
  /** Positions whose commit failed, sent again with the next commit (the newest per partition). */
  private readonly uncommitted = new Map<string, Position>()

  constructor(private readonly o: KafkaSourceOptions) {
    const onError = o.onError ?? (() => {})
    this.consumer = new Consumer({
      clientId: o.clientId,
      groupId: o.groupId,
      bootstrapBrokers: o.brokers,
      ...o.connection,
      autocommit: false,
      sessionTimeout: 30_000,
      rebalanceTimeout: 60_000,
      // Every owned partition must fit in one fetch: the broker fills a fetch in the order its
      // partitions are listed, in a fixed order, so with platformatic's 10 MB total a bid backlog
      // (4 x 4 MiB) took whole fetches while impressions and clicks got nothing, were taken for
      // idle, and their bids expired unjoined (results varied by run). The broker still caps a
      // fetch at its fetch.max.bytes (55 MB by default: 220 partitions of 256 KiB).
      maxBytes: 256 << 20,
      protocols: [{ name: ASSIGNER, version: 1 }],
      partitionAssigner: coPartitionAssigner,
    })
    this.fetchPool = new ConnectionPool(o.clientId, { ...o.connection })
    this.reader = new ResumingConsumer(this.consumer as unknown as GroupConsumer, {
      topics: o.topics,
      toRecord: toSourceRecord,
      // 256 KiB: a response of 24 partitions (~6 MiB of LZ4, ~25 MiB of records) and the one
      // fetched ahead bound what waits in memory. The join bench's child peaked at 0.89 and 0.77 GB
      // RSS with it, 1.45 and 0.94 GB with 1 MiB, 1.08 GB with 128 KiB (single runs, load 8-15).
      maxBytesPerPartition: o.maxBytesPerPartition ?? 1 << 18,
      connectionPool: this.fetchPool,
      ...(o.retryMs !== undefined ? { retryMs: o.retryMs } : {}),
      onError,
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
    await this.reader.start({
      onBatch: (records) => h.onBatch(records),
      onRevoke: async (parts) => {
        await h.onRevoke?.(parts)
      },
      onGap: async (gap) => {
        await h.onGap?.({ ...gap, from: gap.from.toString(), to: gap.to.toString() })
      },
    })
  }

  /** Where the reader's loop stands (kafka/resuming-consumer.ts state()), for a stall's report. */
  readerState(): ReturnType<ResumingConsumer<SourceRecord>['state']> {
    return this.reader.state()
  }

  /** Partition numbers this member owns since the last rebalance. */
  assigned(): number[] {
    return [...new Set(this.reader.assigned().map((tp) => tp.partition))].sort((a, b) => a - b)
  }

  /**
   * The committed offset only says where a restart starts reading (the correlator's stored
   * positions decide what counts), so a commit that fails is logged and sent again with the next.
   */
  async commit(positions: Position[]): Promise<void> {
    for (const p of positions) this.uncommitted.set(tpKey(p.topic, p.partition), p)
    const sending = [...this.uncommitted]
    try {
      await this.consumer.commit({
        offsets: sending.map(([, p]) => ({
          topic: p.topic,
          partition: p.partition,
          offset: BigInt(p.offset),
          leaderEpoch: -1,
        })),
      })
      for (const [k, p] of sending) if (this.uncommitted.get(k) === p) this.uncommitted.delete(k)
    } catch (err) {
      this.o.onError?.(err, 'committing consumer offsets failed; sent again with the next commit')
    }
  }

  async seek(positions: Position[]): Promise<void> {
    this.reader.seek(positions.map((p) => ({ ...p, offset: BigInt(p.offset) })))
  }

  /** Each input partition's high watermark, asked of the brokers (not the last fetch: a stuck consumer fetches nothing). */
  async ends(): Promise<PartitionEnd[]> {
    const offsets = await this.consumer.listOffsets({ topics: this.o.topics })
    const ends: PartitionEnd[] = []
    for (const [topic, partitions] of offsets)
      for (const [partition, end] of partitions.entries()) ends.push({ topic, partition, end })
    return ends
  }

  async stop(): Promise<void> {
    await this.reader.stop()
  }

  /**
   * Leaves the group and closes the connections. Leaving only spares the group a wait (without it,
   * this member's partitions move on after the session timeout), and the coordinator can refuse it
   * (seen after a broker restart), so a refusal is reported and tried once more, never thrown: the
   * correlator's stop still closes its HTTP server, its producer and its storage.
   */
  async close(): Promise<void> {
    await this.fetchPool.close()
    for (let attempt = 1; ; attempt++) {
      try {
        await this.consumer.close()
        return
      } catch (err) {
        const last = attempt === 2
        this.o.onError?.(
          err,
          `leaving the consumer group failed (Kafka error codes: ${kafkaApiCodes(err).join(', ') || 'none'}); ` +
            (last ? 'its partitions move on after the session timeout' : 'trying again'),
        )
        if (last) return
        await new Promise((r) => setTimeout(r, this.o.retryMs ?? 1000))
      }
    }
  }
}

const FLAGS_HEADER = Buffer.from(QUALITY_FLAGS_HEADER)
const EMPTY = Buffer.alloc(0)

function toSourceRecord(
  topic: string,
  partition: number,
  offset: bigint,
  timestamp: number,
  r: FetchedRecord,
): SourceRecord {
  let flags: string | null = null
  for (const [k, v] of r.headers) if (v !== null && k !== null && FLAGS_HEADER.equals(k)) flags = v.toString()
  return {
    topic,
    partition,
    offset: offset.toString(),
    key: r.key,
    value: r.value ?? EMPTY,
    timestamp,
    flags,
  }
}

const REKEY_SEND_RETRIES = 60

/** Produces re-keyed records to the correlator's own topics, acks=all, on @platformatic/kafka. */
export class KafkaRekeyProducer implements RekeyProducer {
  private readonly producer: Producer

  constructor(brokers: string[], clientId: string, connection: KafkaConnectionOptions = {}) {
    this.producer = new Producer({
      clientId,
      bootstrapBrokers: brokers,
      acks: ProduceAcks.ALL,
      autocreateTopics: false,
      // A broker restart or a leader move takes seconds, and the correlator cannot write on
      // without these records: a send waits for Kafka up to a minute (platformatic's default is 3 s).
      retries: REKEY_SEND_RETRIES,
      retryDelay: 1000,
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
