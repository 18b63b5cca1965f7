// Reads back what the gateway wrote, from given offsets, with a real kafkajs consumer.
import { randomUUID } from 'node:crypto'
import kafkajs from 'kafkajs'
import { decodeWire } from '../../events/wire.js'
import { registerLz4Codec } from '../../kafka/lz4-codec.js'

const { Kafka, logLevel } = kafkajs

export interface ReadRecord {
  topic: string
  partition: number
  key: string | null
  value: Record<string, unknown>
  schemaId: number
  headers: Record<string, string>
}

/** The next offset of every partition of the topics: read from here to see only what comes after. */
export async function endOffsets(
  brokers: string[],
  topics: string[],
): Promise<Map<string, Map<number, string>>> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  const out = new Map<string, Map<number, string>>()
  try {
    const existing = new Set(await admin.listTopics())
    for (const topic of topics) {
      const parts = new Map<number, string>()
      if (existing.has(topic))
        for (const p of await admin.fetchTopicOffsets(topic)) parts.set(p.partition, p.offset)
      out.set(topic, parts)
    }
  } finally {
    await admin.disconnect()
  }
  return out
}

/** Consume from `from` until `done(records)` holds or the timeout passes; returns what was read. */
export async function readFrom(
  brokers: string[],
  from: Map<string, Map<number, string>>,
  done: (records: ReadRecord[]) => boolean,
  timeoutMs = 30_000,
): Promise<ReadRecord[]> {
  registerLz4Codec()
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: `test-${randomUUID()}` })
  const records: ReadRecord[] = []
  await consumer.connect()
  try {
    for (const topic of from.keys()) await consumer.subscribe({ topic, fromBeginning: true })
    let finish!: () => void
    const finished = new Promise<void>((resolve) => {
      finish = resolve
    })
    // kafkajs refuses seek() until the group is joined, which run() does not wait for.
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const { schema, value } = decodeWire(message.value!)
        const headers: Record<string, string> = {}
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v)
        records.push({
          topic,
          partition,
          key: message.key?.toString() ?? null,
          value: value as Record<string, unknown>,
          schemaId: schema.id,
          headers,
        })
        if (done(records)) finish()
      },
    })
    await joined
    for (const [topic, parts] of from)
      for (const [partition, offset] of parts) consumer.seek({ topic, partition, offset })
    const timer = setTimeout(finish, timeoutMs)
    await finished
    clearTimeout(timer)
  } finally {
    await consumer.disconnect()
  }
  return records
}
