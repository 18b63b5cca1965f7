import type { Logger } from '../config/logger.js'
import { Connection } from './network/connection.js'
import {
  type BrokerInfo,
  METADATA,
  type PartitionData,
  PRODUCE,
  RETRIABLE,
  readMetadataResponse,
  readProduceResponse,
  writeMetadataRequest,
  writeProduceRequest,
} from './protocol/api.js'
import type { EncodedBatch } from './protocol/record-batch.js'

/** Record batches encoded by a worker, in one buffer. */
export interface BatchSet {
  readonly buffer: Buffer
  readonly batches: readonly EncodedBatch[]
}

export class NotDurableError extends Error {}

/** Kafka answered with a non-retriable error: sending the same bytes again cannot succeed. */
export class KafkaRefusedError extends NotDurableError {}

export interface BatchSinkOptions {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly topics: readonly string[]
  /** A send not acknowledged by then fails (its requests get 503); retries happen inside it. */
  readonly ackTimeoutMs: number
  readonly maxInFlight: number
  /** Bytes of batches waiting for acknowledgement; beyond it sends fail at once (the memory bound). */
  readonly maxPendingBytes: number
  readonly logger: Logger
}

export interface SinkStats {
  requests: number
  batches: number
  records: number
  bytes: number
  errors: number
}

/**
 * Writes pre-encoded record batches to partition leaders with acks=all: one Produce request per
 * leader per send, retried after a metadata refresh on retriable errors until the ack deadline.
 * The main thread only moves bytes here; the records were encoded and compressed by a worker.
 */
export class BatchSink {
  private brokers = new Map<number, BrokerInfo>()
  private leaders = new Map<string, Map<number, number>>()
  private readonly connections = new Map<number, Connection>()
  private bootstrap: Connection | null = null
  private healthy = false
  private closed = false
  private inFlight = 0
  private waiting: (() => void)[] = []
  private pendingBytes = 0
  private probe: NodeJS.Timeout | null = null
  private failNext = false
  /** When metadata was last loaded (epoch ms). */
  private refreshedAt = 0
  readonly stats: SinkStats = { requests: 0, batches: 0, records: 0, bytes: 0, errors: 0 }

  constructor(private readonly options: BatchSinkOptions) {}

  /** Load metadata (fails when no broker answers); then keep it fresh in the background. */
  async connect(): Promise<void> {
    await this.refreshMetadata()
    // Unhealthy: probe every second so readiness comes back quickly; healthy: refresh leaders every 30 s.
    // `??=`: the start-up retry may connect more than once; one probe is enough.
    this.probe ??= setInterval(() => {
      if (!this.healthy || Date.now() - this.refreshedAt >= 30_000) this.refreshMetadata().catch(() => {})
    }, 1000)
    this.probe.unref()
  }

  get ready(): boolean {
    return this.healthy && !this.closed && this.pendingBytes < this.options.maxPendingBytes
  }

  get bufferedBytes(): number {
    return this.pendingBytes
  }

  /** Produce requests waiting for their response. */
  get inFlightRequests(): number {
    return this.inFlight
  }

  /** Partition count per topic, for the workers' partitioner. */
  partitionCounts(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [topic, parts] of this.leaders) out[topic] = parts.size
    return out
  }

  /** Fault tests: the next send fails as if Kafka never acknowledged it. */
  injectFailure(): void {
    this.failNext = true
  }

  async send(set: BatchSet): Promise<void> {
    if (this.closed) throw new NotDurableError('the producer is closed')
    if (this.failNext) {
      this.failNext = false
      throw new NotDurableError('Kafka did not acknowledge the events (injected fault)')
    }
    let bytes = 0
    for (const b of set.batches) bytes += b.length
    if (this.pendingBytes + bytes > this.options.maxPendingBytes) {
      throw new NotDurableError('too many bytes are waiting for Kafka')
    }
    this.pendingBytes += bytes
    const deadline = Date.now() + this.options.ackTimeoutMs
    const sent = { any: false }
    try {
      let remaining: readonly EncodedBatch[] = set.batches
      for (let attempt = 0; ; attempt++) {
        remaining = await this.produceOnce(set.buffer, remaining, deadline, sent)
        if (remaining.length === 0) {
          this.healthy = true
          return
        }
        const wait = Math.min(50 * 2 ** attempt, 1000, deadline - Date.now())
        if (wait <= 0) {
          // Bytes already written to a broker that went quiet may still be appended when it
          // recovers; say so rather than promise they were not (consumers dedup by event_id).
          const maybe = sent.any
            ? '; some of these events may still be written, so a retry can duplicate them'
            : ''
          throw new NotDurableError(
            `Kafka did not acknowledge within ${this.options.ackTimeoutMs} ms${maybe}`,
          )
        }
        await new Promise((r) => setTimeout(r, wait))
        await this.refreshMetadata().catch(() => {})
      }
    } catch (err) {
      this.stats.errors++
      throw err instanceof NotDurableError ? err : new NotDurableError((err as Error).message)
    } finally {
      this.pendingBytes -= bytes
    }
  }

  /** One Produce request per leader; returns the batches to retry. Throws on non-retriable errors. */
  private async produceOnce(
    buffer: Buffer,
    batches: readonly EncodedBatch[],
    deadline: number,
    sent: { any: boolean },
  ): Promise<EncodedBatch[]> {
    const byLeader = new Map<number, EncodedBatch[]>()
    const retry: EncodedBatch[] = []
    for (const b of batches) {
      const leader = this.leaders.get(b.topic)?.get(b.partition)
      if (leader === undefined || leader < 0 || !this.brokers.has(leader)) retry.push(b)
      else {
        const list = byLeader.get(leader)
        if (list) list.push(b)
        else byLeader.set(leader, [b])
      }
    }
    await Promise.all(
      [...byLeader].map(async ([leader, list]) => {
        const timeout = Math.max(1, deadline - Date.now())
        const data: PartitionData[] = list.map((b) => ({
          topic: b.topic,
          partition: b.partition,
          batch: buffer.subarray(b.offset, b.offset + b.length),
        }))
        await this.acquire()
        try {
          const conn = this.connectionTo(leader)
          sent.any = true
          const response = await conn.request(PRODUCE.key, PRODUCE.version, timeout, (w) =>
            writeProduceRequest(w, -1, timeout, data),
          )
          this.stats.requests++
          const byKey = new Map(list.map((b) => [`${b.topic}:${b.partition}`, b]))
          for (const r of readProduceResponse(response)) {
            const b = byKey.get(`${r.topic}:${r.partition}`)
            if (!b) continue
            if (r.error === 0) {
              this.stats.batches++
              this.stats.records += b.records
              this.stats.bytes += b.length
            } else if (RETRIABLE.has(r.error)) retry.push(b)
            else
              throw new NotDurableError(
                `Kafka refused the batch for ${r.topic}/${r.partition}: error ${r.error}`,
              )
          }
        } catch (err) {
          if (err instanceof NotDurableError) throw err
          // One line when Kafka goes from healthy to not ('kafka metadata loaded' marks its return),
          // not one per failed request; sends that fail for good count in the metrics.
          if (this.healthy)
            this.options.logger.warn({ err: (err as Error).message, leader }, 'produce request failed')
          this.healthy = false
          retry.push(...list)
        } finally {
          this.release()
        }
      }),
    )
    return retry
  }

  private connectionTo(nodeId: number): Connection {
    let c = this.connections.get(nodeId)
    if (!c || c.broken) {
      const b = this.brokers.get(nodeId)!
      c = new Connection(b.host, b.port, this.options.clientId, 3000)
      this.connections.set(nodeId, c)
    }
    return c
  }

  private async refreshMetadata(): Promise<void> {
    let lastError: Error | null = null
    for (const address of this.options.brokers) {
      const [host, port] = address.split(':') as [string, string]
      try {
        if (
          !this.bootstrap ||
          this.bootstrap.broken ||
          `${this.bootstrap.host}:${this.bootstrap.port}` !== address
        ) {
          this.bootstrap?.close()
          this.bootstrap = new Connection(host, Number(port), this.options.clientId, 3000)
        }
        const r = await this.bootstrap.request(METADATA.key, METADATA.version, 5000, (w) =>
          writeMetadataRequest(w, this.options.topics),
        )
        const meta = readMetadataResponse(r)
        this.brokers = new Map(meta.brokers.map((b) => [b.nodeId, b]))
        this.leaders = new Map(meta.topics.filter((t) => t.error === 0).map((t) => [t.name, t.leaders]))
        const missing = this.options.topics.filter((t) => !this.leaders.has(t))
        if (missing.length > 0) throw new Error(`topics without metadata: ${missing.join(', ')}`)
        this.refreshedAt = Date.now()
        if (!this.healthy) this.options.logger.info({ brokers: meta.brokers.length }, 'kafka metadata loaded')
        this.healthy = true
        return
      } catch (err) {
        lastError = err as Error
        this.bootstrap?.close()
        this.bootstrap = null
      }
    }
    this.healthy = false
    throw new NotDurableError(`no Kafka broker answered: ${lastError?.message}`)
  }

  private acquire(): Promise<void> {
    if (this.inFlight < this.options.maxInFlight) {
      this.inFlight++
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiting.push(resolve))
  }

  private release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.inFlight--
  }

  /** Wait for sends in flight (bounded by the ack timeout), then close connections. */
  async close(): Promise<void> {
    const deadline = Date.now() + this.options.ackTimeoutMs
    while (this.pendingBytes > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    this.closed = true
    if (this.probe) clearInterval(this.probe)
    this.bootstrap?.close()
    for (const c of this.connections.values()) c.close()
  }
}
