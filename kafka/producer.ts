import kafkajs, { type IHeaders, type Message, type Producer } from 'kafkajs'

const { CompressionTypes, Kafka, logLevel } = kafkajs

import type { Logger } from '../config/logger.js'
import { registerLz4Codec } from './lz4-codec.js'

/** One Kafka record as adgate writes it. */
export interface OutRecord {
  readonly key: string | null
  readonly value: Buffer
  readonly headers?: IHeaders
}

/** The small surface the gateway needs from Kafka; kafkajs stays behind it. */
export interface EventSink {
  /** Resolves once every record is acknowledged by all in-sync replicas; rejects otherwise. */
  send(topic: string, records: OutRecord[]): Promise<void>
  /** True while records can be accepted (connected, not over the memory bound, not closed). */
  readonly ready: boolean
  close(): Promise<void>
}

export class NotDurableError extends Error {}

export interface ProducerOptions {
  readonly brokers: string[]
  readonly clientId: string
  readonly lingerMs: number
  readonly batchBytes: number
  readonly maxInFlight: number
  readonly maxPendingBytes: number
  readonly ackTimeoutMs: number
  readonly logger: Logger
}

interface Entry {
  topic: string
  records: OutRecord[]
  bytes: number
  resolve: () => void
  reject: (err: Error) => void
}

export interface ProducerStats {
  batches: number
  records: number
  bytes: number
  errors: number
}

/**
 * kafkajs has no linger: every send is a produce request. This accumulator gathers the records of
 * many HTTP requests for `lingerMs` or until `batchBytes`, then sends them as one LZ4-compressed
 * batch per topic-partition with acks=all, at most `maxInFlight` batches at a time. A batch not
 * acknowledged within `ackTimeoutMs` fails its requests (they get 503: nothing was accepted).
 * Past `maxPendingBytes` waiting for Kafka, new sends fail at once instead of queueing without bound.
 */
export class KafkaSink implements EventSink {
  private readonly kafka: InstanceType<typeof Kafka>
  private readonly producer: Producer
  private queue: Entry[] = []
  private queuedBytes = 0
  private pendingBytes = 0
  private inFlight = 0
  private timer: NodeJS.Timeout | null = null
  private connected = false
  private closed = false
  readonly stats: ProducerStats = { batches: 0, records: 0, bytes: 0, errors: 0 }

  constructor(private readonly options: ProducerOptions) {
    registerLz4Codec()
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      connectionTimeout: 3000,
      requestTimeout: options.ackTimeoutMs,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 },
      logLevel: logLevel.NOTHING,
    })
    this.producer = this.kafka.producer({
      allowAutoTopicCreation: false,
      maxInFlightRequests: options.maxInFlight,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 2000 },
    })
    this.producer.on(this.producer.events.CONNECT, () => {
      this.connected = true
    })
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.connected = false
    })
  }

  async connect(): Promise<void> {
    await this.producer.connect()
    this.connected = true
  }

  get admin() {
    return this.kafka.admin()
  }

  get ready(): boolean {
    return this.connected && !this.closed && this.pendingBytes < this.options.maxPendingBytes
  }

  get bufferedBytes(): number {
    return this.pendingBytes
  }

  send(topic: string, records: OutRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new NotDurableError('the producer is closed'))
    let bytes = 0
    for (const r of records) bytes += r.value.length + (r.key?.length ?? 0) + 64
    if (this.pendingBytes + bytes > this.options.maxPendingBytes) {
      return Promise.reject(new NotDurableError('too many bytes are waiting for Kafka'))
    }
    this.pendingBytes += bytes
    return new Promise((resolve, reject) => {
      this.queue.push({ topic, records, bytes, resolve, reject })
      this.queuedBytes += bytes
      if (this.queuedBytes >= this.options.batchBytes) this.flush()
      else if (this.timer === null) this.timer = setTimeout(this.flush, this.options.lingerMs)
    })
  }

  private readonly flush = (): void => {
    if (this.timer !== null) {
      clearTimeout(this.timer)
      this.timer = null
    }
    while (this.queue.length > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = this.takeBatch()
      this.inFlight++
      void this.sendBatch(batch).finally(() => {
        this.inFlight--
        if (this.queue.length > 0) this.flush()
      })
    }
  }

  private takeBatch(): Entry[] {
    const batch: Entry[] = []
    let bytes = 0
    while (
      this.queue.length > 0 &&
      (batch.length === 0 || bytes + this.queue[0]!.bytes <= this.options.batchBytes)
    ) {
      const e = this.queue.shift()!
      bytes += e.bytes
      batch.push(e)
    }
    this.queuedBytes -= bytes
    return batch
  }

  private async sendBatch(batch: Entry[]): Promise<void> {
    const byTopic = new Map<string, Message[]>()
    let records = 0
    let bytes = 0
    for (const e of batch) {
      let messages = byTopic.get(e.topic)
      if (!messages) {
        messages = []
        byTopic.set(e.topic, messages)
      }
      for (const r of e.records) messages.push(r as Message)
      records += e.records.length
      bytes += e.bytes
    }
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        this.producer.sendBatch({
          acks: -1,
          timeout: this.options.ackTimeoutMs,
          compression: CompressionTypes.LZ4,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        }),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`not acknowledged within ${this.options.ackTimeoutMs} ms`)),
            this.options.ackTimeoutMs,
          )
        }),
      ])
      this.stats.batches++
      this.stats.records += records
      this.stats.bytes += bytes
      for (const e of batch) e.resolve()
    } catch (err) {
      this.stats.errors++
      this.options.logger.warn({ err: (err as Error).message, records }, 'kafka batch failed')
      const failure = new NotDurableError(`Kafka did not acknowledge the events: ${(err as Error).message}`)
      for (const e of batch) e.reject(failure)
    } finally {
      clearTimeout(timer)
      this.pendingBytes -= bytes
    }
  }

  /** Send what is queued, wait for in-flight batches, disconnect. */
  async close(): Promise<void> {
    this.flush()
    const deadline = Date.now() + this.options.ackTimeoutMs
    while ((this.queue.length > 0 || this.inFlight > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5))
      this.flush()
    }
    this.closed = true
    await this.producer.disconnect()
  }
}
