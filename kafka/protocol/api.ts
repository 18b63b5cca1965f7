import type { Reader } from './reader.js'
import type { Writer } from './writer.js'

/** The two Kafka APIs the gateway's producer speaks, at versions every supported broker serves. */
export const PRODUCE = { key: 0, version: 3 } as const
export const METADATA = { key: 3, version: 1 } as const

/** Error codes worth retrying after a metadata refresh (Kafka protocol guide, "Error Codes"). */
export const RETRIABLE = new Set([
  3, // UNKNOWN_TOPIC_OR_PARTITION
  5, // LEADER_NOT_AVAILABLE
  6, // NOT_LEADER_OR_FOLLOWER
  7, // REQUEST_TIMED_OUT
  13, // NETWORK_EXCEPTION
  14, // COORDINATOR_LOAD_IN_PROGRESS
  15, // COORDINATOR_NOT_AVAILABLE
  19, // NOT_ENOUGH_REPLICAS
  20, // NOT_ENOUGH_REPLICAS_AFTER_APPEND
  56, // KAFKA_STORAGE_ERROR
])

export interface BrokerInfo {
  nodeId: number
  host: string
  port: number
}

export interface TopicInfo {
  error: number
  name: string
  /** partition → leader node id (-1 when leaderless) */
  leaders: Map<number, number>
}

/** Metadata v1 request: the topics to describe. */
export function writeMetadataRequest(w: Writer, topics: readonly string[]): void {
  w.int32(topics.length)
  for (const t of topics) w.string(t)
}

/** Metadata v1 response: brokers, controller id, topics with partition leaders. */
export function readMetadataResponse(r: Reader): { brokers: BrokerInfo[]; topics: TopicInfo[] } {
  const brokers = r.array((b) => {
    const nodeId = b.int32()
    const host = b.string() ?? ''
    const port = b.int32()
    b.string() // rack
    return { nodeId, host, port }
  })
  r.int32() // controller id
  const topics = r.array((t) => {
    const error = t.int16()
    const name = t.string() ?? ''
    t.int8() // is_internal
    const leaders = new Map<number, number>()
    t.array((p) => {
      p.int16() // partition error
      const partition = p.int32()
      leaders.set(partition, p.int32())
      p.array((x) => x.int32()) // replicas
      p.array((x) => x.int32()) // isr
    })
    return { error, name, leaders }
  })
  return { brokers, topics }
}

export interface PartitionData {
  topic: string
  partition: number
  batch: Uint8Array
}

/** Produce v3 request: transactional id, acks, timeout, then record batches grouped by topic. */
export function writeProduceRequest(
  w: Writer,
  acks: number,
  timeoutMs: number,
  data: readonly PartitionData[],
): void {
  const byTopic = new Map<string, PartitionData[]>()
  for (const d of data) {
    const list = byTopic.get(d.topic)
    if (list) list.push(d)
    else byTopic.set(d.topic, [d])
  }
  w.string(null).int16(acks).int32(timeoutMs).int32(byTopic.size)
  for (const [topic, parts] of byTopic) {
    w.string(topic).int32(parts.length)
    for (const p of parts) w.int32(p.partition).int32(p.batch.length).bytes(p.batch)
  }
}

/** Produce v3 response: per topic-partition error codes. */
export function readProduceResponse(r: Reader): { topic: string; partition: number; error: number }[] {
  const out: { topic: string; partition: number; error: number }[] = []
  r.array((t) => {
    const topic = t.string() ?? ''
    t.array((p) => {
      const partition = p.int32()
      const error = p.int16()
      p.int64() // base offset
      p.int64() // log append time
      out.push({ topic, partition, error })
    })
  })
  return out
}
