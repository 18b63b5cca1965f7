// Reads back what the gateway wrote, from given offsets, with a real @platformatic/kafka consumer
// (the client every adgate role uses), over any security settings.
import { randomUUID } from 'node:crypto'
import { Admin, Consumer, type MessagesStream } from '@platformatic/kafka'
import { decodeWire } from '../../events/wire.js'
import type { KafkaConnectionOptions } from '../../kafka/client-options.js'

export interface ReadRecord {
  topic: string
  partition: number
  offset: string
  key: string | null
  value: Record<string, unknown>
  schemaId: number
  headers: Record<string, string>
}

/** Offsets per topic and partition, as decimal strings. */
export type Offsets = Map<string, Map<number, string>>

/** Group ids start with "adgate" so the secured cluster's adgate user may use them. */
function consumer(brokers: string[], connection: KafkaConnectionOptions): Consumer {
  return new Consumer({
    clientId: 'adgate-test-reader',
    groupId: `adgate-test-${randomUUID()}`,
    bootstrapBrokers: brokers,
    ...connection,
  })
}

/** The next offset of every partition of the topics: read from here to see only what comes after. */
export async function endOffsets(
  brokers: string[],
  topics: string[],
  connection: KafkaConnectionOptions = {},
): Promise<Offsets> {
  const admin = new Admin({ clientId: 'adgate-test-reader', bootstrapBrokers: brokers, ...connection })
  const c = consumer(brokers, connection)
  const out: Offsets = new Map()
  try {
    const existing = new Set(await admin.listTopics())
    const present = topics.filter((t) => existing.has(t))
    const offsets =
      present.length > 0 ? await c.listOffsets({ topics: present }) : new Map<string, bigint[]>()
    for (const topic of topics)
      out.set(topic, new Map((offsets.get(topic) ?? []).map((o, p) => [p, String(o)])))
  } finally {
    await c.close(true)
    await admin.close()
  }
  return out
}

/**
 * Consume from `from` until `done(records)` holds or the timeout passes; returns what was read.
 * A read that fails (a broker just restarted answers NOT_LEADER for a while) resumes where it was,
 * with a fresh consumer.
 */
export async function readFrom(
  brokers: string[],
  from: Offsets,
  done: (records: ReadRecord[]) => boolean,
  timeoutMs = 30_000,
  connection: KafkaConnectionOptions = {},
): Promise<ReadRecord[]> {
  const records: ReadRecord[] = []
  const next: Offsets = new Map([...from].map(([topic, parts]) => [topic, new Map(parts)]))
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      if (await readSome(brokers, next, records, done, deadline, connection)) return records
    } catch (err) {
      lastError = err
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  if (lastError !== undefined && records.length === 0) throw lastError
  return records
}

/** One consumer's read from `next` (advanced as records arrive); true once `done` holds or time is up. */
async function readSome(
  brokers: string[],
  next: Offsets,
  records: ReadRecord[],
  done: (records: ReadRecord[]) => boolean,
  deadline: number,
  connection: KafkaConnectionOptions,
): Promise<boolean> {
  const c = consumer(brokers, connection)
  let timedOut = false
  let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined
  const timer = setTimeout(
    () => {
      timedOut = true
      stream?.destroy()
    },
    Math.max(0, deadline - Date.now()),
  )
  try {
    // A partition missing from `next` (its topic did not exist yet) is read from its start.
    const meta = await c.metadata({ topics: [...next.keys()], forceUpdate: true })
    const offsets = [...next].flatMap(([topic, parts]) =>
      Array.from({ length: meta.topics.get(topic)?.partitionsCount ?? 0 }, (_, partition) => ({
        topic,
        partition,
        offset: BigInt(parts.get(partition) ?? '0'),
      })),
    )
    if (offsets.length === 0) return true
    stream = await c.consume({ topics: [...next.keys()], mode: 'manual', offsets, autocommit: false })
    for await (const m of stream) {
      const { schema, value } = decodeWire(m.value)
      const headers: Record<string, string> = {}
      for (const [k, v] of m.headers) headers[String(k)] = String(v)
      records.push({
        topic: m.topic,
        partition: m.partition,
        offset: String(m.offset),
        key: m.key?.length ? m.key.toString() : null,
        value: value as Record<string, unknown>,
        schemaId: schema.id,
        headers,
      })
      next.get(m.topic)?.set(m.partition, String(m.offset + 1n))
      if (done(records)) return true
    }
    return timedOut
  } catch (err) {
    if (timedOut) return true
    throw err
  } finally {
    clearTimeout(timer)
    await c.close(true)
  }
}
