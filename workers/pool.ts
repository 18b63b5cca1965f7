import { Piscina } from 'piscina'
import type { KafkaRefusedError } from '../kafka/batch-sink.js'
import type { EncodedBatch } from '../kafka/protocol/record-batch.js'
import type { BodyFacts, BodyMeta, BodyOutcome, DecodeTask, Fault, TaskResult } from './decode-task.js'

export interface DecodeRequest extends BodyFacts {
  readonly body: Buffer
}

/** What one task produced for Kafka; shared by the requests of the task. */
export interface TaskOutput {
  readonly buffer: Buffer
  readonly batches: readonly EncodedBatch[]
  /** Set by whoever delivers the batches first, so they are sent once per task (resolves with the topics Kafka refuses). */
  delivery?: Promise<ReadonlyMap<string, KafkaRefusedError>>
}

export interface DecodeReply {
  readonly outcome: BodyOutcome
  readonly task: TaskOutput
}

export class WorkerFailedError extends Error {}

export interface PoolOptions {
  readonly workers: number
  readonly maxBytes: number
  readonly maxEvents: number
  /** Partition count per topic, asked at each task (metadata can change). */
  readonly partitions: () => Readonly<Record<string, number>>
  /** Bodies of this many bytes close a task at once. */
  readonly maxTaskBytes: number
  /** While every worker is busy, how long new bodies wait to join the next task. */
  readonly lingerMs: number
  /** A task running longer is taken as hung: its worker is replaced, its requests fail. */
  readonly taskTimeoutMs: number
  /** Per-body decode budget (ADGATE_REQUEST_CPU_MS); unset: none. */
  readonly budgetMs?: number
  /** The compiled worker module (defaults to the one beside this file). */
  readonly filename?: string
  /** JSON bodies through the native transcoder when it is built (ADGATE_NATIVE); default true. */
  readonly native?: boolean
  /** The data-quality rules channel (quality/rules-channel.ts) the workers read each task's rules from. */
  readonly rules?: SharedArrayBuffer
  /** Schema ids from the schema registry (registry/subjects.ts); unset: the built-in ids. */
  readonly schemaIds?: Readonly<Record<string, number>> | null
  /** Called once per task, before its requests are answered (metrics); null when the task failed. */
  readonly onTask?: (result: TaskResult | null) => void
  /** Starts the threads that run tasks; the default is piscina. Unit tests pass a fake. */
  readonly startRunner?: (threads: RunnerThreads) => TaskRunner
}

/** What the threads are started from. */
export interface RunnerThreads {
  readonly filename: string
  readonly workers: number
  readonly workerData: WorkerData
}

/** What the pool needs of piscina: run a task with its buffer transferred, report the queue, stop. */
export interface TaskRunner {
  run(task: DecodeTask, options: { transferList: ArrayBuffer[]; signal: AbortSignal }): Promise<TaskResult>
  readonly queueSize: number
  destroy(): Promise<void>
}

function startPiscina(threads: RunnerThreads): TaskRunner {
  return new Piscina({
    filename: threads.filename,
    minThreads: threads.workers,
    maxThreads: threads.workers,
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData: threads.workerData,
  })
}

/** What each decode thread is started with (workers/decode-worker.ts reads it). */
export interface WorkerData {
  readonly rules?: SharedArrayBuffer
  readonly schemaIds?: Readonly<Record<string, number>> | null
  readonly native: boolean
}

interface Pending {
  request: DecodeRequest
  resolve: (reply: DecodeReply) => void
  reject: (err: Error) => void
}

/**
 * Decoding off the event loop, in piscina workers, batched adaptively: when a worker is idle the
 * bodies of the current event-loop turn go at once (lowest latency); while all are busy, bodies
 * collect until one frees up, `lingerMs` passes or `maxTaskBytes` is reached, so a loaded gateway
 * writes fewer, larger Kafka batches. Each task's bodies are copied into one ArrayBuffer that is
 * transferred, not cloned, and its output comes back the same way.
 */
export class DecodePool {
  private readonly pool: TaskRunner
  private pending: Pending[] = []
  private pendingBytes = 0
  private scheduled = false
  private lingerTimer: NodeJS.Timeout | null = null
  private running = 0
  private nextFault: Fault | undefined

  constructor(private readonly options: PoolOptions) {
    this.pool = (options.startRunner ?? startPiscina)({
      filename: options.filename ?? new URL('./decode-worker.js', import.meta.url).href,
      workers: options.workers,
      workerData: {
        rules: options.rules,
        schemaIds: options.schemaIds ?? null,
        native: options.native ?? true,
      },
    })
  }

  decode(request: DecodeRequest): Promise<DecodeReply> {
    return new Promise((resolve, reject) => {
      this.pending.push({ request, resolve, reject })
      this.pendingBytes += request.body.length
      if (this.pendingBytes >= this.options.maxTaskBytes) this.flush()
      else if (this.running < this.options.workers) {
        if (!this.scheduled) {
          this.scheduled = true
          setImmediate(this.flushScheduled)
        }
      } else if (this.lingerTimer === null) {
        this.lingerTimer = setTimeout(this.flush, this.options.lingerMs)
      }
    })
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false
    this.flush()
  }

  private readonly flush = (): void => {
    if (this.lingerTimer !== null) {
      clearTimeout(this.lingerTimer)
      this.lingerTimer = null
    }
    if (this.pending.length === 0) return
    const batch = this.pending
    this.pending = []
    const buffer = new ArrayBuffer(this.pendingBytes)
    this.pendingBytes = 0
    const bytes = new Uint8Array(buffer)
    const bodies: BodyMeta[] = []
    let offset = 0
    for (const { request: r } of batch) {
      bytes.set(r.body, offset)
      bodies.push({
        offset,
        length: r.body.length,
        type: r.type,
        encoding: r.encoding,
        contentEncoding: r.contentEncoding,
        source: r.source,
        requestId: r.requestId,
        ingestTime: r.ingestTime,
      })
      offset += r.body.length
    }
    const task: DecodeTask = {
      buffer,
      bodies,
      maxBytes: this.options.maxBytes,
      maxEvents: this.options.maxEvents,
      budgetMs: this.options.budgetMs,
      partitions: this.options.partitions(),
      fault: this.nextFault,
    }
    this.nextFault = undefined
    this.running++
    this.pool
      .run(task, { transferList: [buffer], signal: AbortSignal.timeout(this.options.taskTimeoutMs) })
      .then((result: TaskResult) => {
        this.options.onTask?.(result)
        const output: TaskOutput = { buffer: Buffer.from(result.buffer), batches: result.batches }
        for (let i = 0; i < batch.length; i++)
          batch[i]!.resolve({ outcome: result.outcomes[i]!, task: output })
      })
      .catch((err: Error) => {
        this.options.onTask?.(null)
        const failure = new WorkerFailedError(`decode task failed: ${err.message}`, { cause: err })
        for (const p of batch) p.reject(failure)
      })
      .finally(() => {
        this.running--
        // A worker is free: what collected while all were busy goes now.
        if (this.pending.length > 0 && !this.scheduled) {
          this.scheduled = true
          setImmediate(this.flushScheduled)
        }
      })
  }

  get queueSize(): number {
    return this.pool.queueSize + this.pending.length
  }

  /** Fault tests: the next task kills (or hangs) the worker thread that runs it. */
  injectFault(fault: Fault): void {
    this.nextFault = fault
  }

  async close(): Promise<void> {
    await this.pool.destroy()
  }
}
