// Reads back what the gateway wrote, from given offsets, with a real @platformatic/kafka consumer
// (the client every adgate role uses), over any security settings.
import { randomUUID } from 'node:crypto'
import { Admin, Consumer, type Message, type MessagesStream } from '@platformatic/kafka'
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
 * with a fresh consumer. `done` is asked after a geometrically growing number of new records, and
 * whenever the stream pauses: asked per record it made reading a topic other writers fill
 * quadratic, and starved the timers of the test (shutdown.test's read-back, issue 13).
 */
export async function readFrom(
  brokers: string[],
  from: Offsets,
  done: (records: ReadRecord[]) => boolean,
  timeoutMs = 30_000,
  connection: KafkaConnectionOptions = {},
): Promise<ReadRecord[]> {
  const records: ReadRecord[] = []
  let askedAt = 0
  const satisfied = () => {
    askedAt = records.length
    return done(records)
  }
  const onRecord = (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
    records.push(readRecord(m))
    return records.length - askedAt >= Math.max(1, askedAt >> 3) && satisfied()
  }
  const idle = () => records.length > askedAt && satisfied()
  const finished = await readLoop(brokers, from, onRecord, idle, timeoutMs, connection)
  // No record at all and an error: the error, not an empty read.
  if (finished !== true && finished !== false && records.length === 0) throw finished
  return records
}

/**
 * Everything between `from` and `to` (end offsets taken after the writer stopped, so all it wrote
 * is below them), keeping the records whose raw value `keep` accepts (decoding only those, never
 * holding other writers' records). The read ends when every partition reached `to`, not at a
 * clock: `timeoutMs` only bounds a broker that stops answering, and `complete` says which it was.
 */
export async function readRange(
  brokers: string[],
  from: Offsets,
  to: Offsets,
  keep: (value: Buffer) => boolean,
  timeoutMs = 300_000,
  connection: KafkaConnectionOptions = {},
): Promise<{ records: ReadRecord[]; complete: boolean }> {
  const records: ReadRecord[] = []
  const short = new Set<string>()
  for (const [topic, parts] of to)
    for (const [p, end] of parts)
      if (BigInt(from.get(topic)?.get(p) ?? '0') < BigInt(end)) short.add(`${topic}/${p}`)
  if (short.size === 0) return { records, complete: true }
  const onRecord = (m: Message<Buffer, Buffer, Buffer, Buffer>) => {
    if (keep(m.value)) records.push(readRecord(m))
    const end = to.get(m.topic)?.get(m.partition)
    if (end !== undefined && m.offset + 1n >= BigInt(end)) short.delete(`${m.topic}/${m.partition}`)
    return short.size === 0
  }
  const complete = (await readLoop(brokers, from, onRecord, () => false, timeoutMs, connection)) === true
  return { records, complete }
}

function readRecord(m: Message<Buffer, Buffer, Buffer, Buffer>): ReadRecord {
  const { schema, value } = decodeWire(m.value)
  const headers: Record<string, string> = {}
  for (const [k, v] of m.headers) headers[String(k)] = String(v)
  return {
    topic: m.topic,
    partition: m.partition,
    offset: String(m.offset),
    key: m.key?.length ? m.key.toString() : null,
    value: value as Record<string, unknown>,
    schemaId: schema.id,
    headers,
  }
}

/**
 * Reads from `from` with fresh consumers (one per failed attempt), handing each record to
 * `onRecord` until it returns true; `idle` is asked when no record came for 100 ms. Resolves true
 * when done, the last error (or false) at the timeout.
 */
async function readLoop(
  brokers: string[],
  from: Offsets,
  onRecord: (m: Message<Buffer, Buffer, Buffer, Buffer>) => boolean,
  idle: () => boolean,
  timeoutMs: number,
  connection: KafkaConnectionOptions,
): Promise<true | false | unknown> {
  const next: Offsets = new Map([...from].map(([topic, parts]) => [topic, new Map(parts)]))
  const deadline = Date.now() + timeoutMs
  let lastError: unknown = false
  while (Date.now() < deadline) {
    try {
      const r = await readSome(brokers, next, onRecord, idle, deadline, connection)
      if (r !== 'timeout') return true
    } catch (err) {
      lastError = err
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  return lastError
}

/** One consumer's read from `next` (advanced as records arrive): 'done', or 'timeout' at the deadline. */
async function readSome(
  brokers: string[],
  next: Offsets,
  onRecord: (m: Message<Buffer, Buffer, Buffer, Buffer>) => boolean,
  idle: () => boolean,
  deadline: number,
  connection: KafkaConnectionOptions,
): Promise<'done' | 'timeout'> {
  const c = consumer(brokers, connection)
  let outcome: 'done' | 'timeout' | null = null
  let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined
  const end = (why: 'done' | 'timeout') => {
    outcome ??= why
    stream?.destroy()
  }
  const timer = setTimeout(() => end('timeout'), Math.max(0, deadline - Date.now()))
  let lastRecordAt = Date.now()
  const quiet = setInterval(() => {
    if (Date.now() - lastRecordAt >= 100 && idle()) end('done')
  }, 100)
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
    if (offsets.length === 0 || outcome !== null) return outcome ?? 'done'
    stream = await c.consume({ topics: [...next.keys()], mode: 'manual', offsets, autocommit: false })
    if (outcome !== null) stream.destroy()
    for await (const m of stream) {
      lastRecordAt = Date.now()
      next.get(m.topic)?.set(m.partition, String(m.offset + 1n))
      if (onRecord(m)) return 'done'
    }
    return outcome ?? 'timeout'
  } catch (err) {
    if (outcome !== null) return outcome
    throw err
  } finally {
    clearTimeout(timer)
    clearInterval(quiet)
    await c.close(true)
  }
}
