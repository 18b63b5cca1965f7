import { Piscina } from 'piscina'
import type { ContentEncoding } from '../decoders/content-encoding.js'
import type { Encoding } from '../decoders/result.js'
import type { EventType } from '../events/catalog.js'
import type { BodyMeta, BodyOutcome, DecodeTask, Fault, TaskResult } from './decode-task.js'

export interface DecodeRequest {
  readonly body: Buffer
  readonly type: EventType
  readonly encoding: Encoding
  readonly contentEncoding: ContentEncoding
  readonly source: string
  readonly requestId: string
  readonly ingestTime: number
}

export interface DecodeReply {
  readonly outcome: BodyOutcome
  /** Holds the wire-format values at outcome.spans (shared by the requests of one task). */
  readonly values: Buffer
}

export class WorkerFailedError extends Error {}

export interface PoolOptions {
  readonly workers: number
  readonly maxBytes: number
  readonly maxEvents: number
  /** A task is sent once its bodies reach this many bytes, or on the next turn of the event loop. */
  readonly maxTaskBytes?: number
  /** A task running longer than this is taken as hung: its worker is replaced, its requests fail. */
  readonly taskTimeoutMs?: number
  /** The compiled worker module (defaults to the one beside this file). */
  readonly filename?: string
}

interface Pending {
  request: DecodeRequest
  resolve: (reply: DecodeReply) => void
  reject: (err: Error) => void
}

/**
 * Decoding off the event loop, in piscina workers. Requests that arrive in the same turn of the
 * event loop are coalesced into one task (copied into one ArrayBuffer that is transferred, not
 * cloned), because a task costs tens of µs of messaging whatever its size.
 */
export class DecodePool {
  private readonly pool: Piscina
  private readonly maxTaskBytes: number
  private readonly taskTimeoutMs: number
  private pending: Pending[] = []
  private pendingBytes = 0
  private scheduled = false
  private nextFault: Fault | undefined

  constructor(private readonly options: PoolOptions) {
    this.maxTaskBytes = options.maxTaskBytes ?? 256 * 1024
    this.taskTimeoutMs = options.taskTimeoutMs ?? 10_000
    this.pool = new Piscina({
      filename: options.filename ?? new URL('./decode-worker.js', import.meta.url).href,
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Bound the backlog: beyond it the gateway answers 503 instead of queueing without limit.
      maxQueue: options.workers * 64,
    })
  }

  decode(request: DecodeRequest): Promise<DecodeReply> {
    return new Promise((resolve, reject) => {
      this.pending.push({ request, resolve, reject })
      this.pendingBytes += request.body.length
      if (this.pendingBytes >= this.maxTaskBytes) this.flush()
      else if (!this.scheduled) {
        this.scheduled = true
        setImmediate(this.flush)
      }
    })
  }

  private readonly flush = (): void => {
    this.scheduled = false
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
      fault: this.nextFault,
    }
    this.nextFault = undefined
    this.pool
      .run(task, { transferList: [buffer], signal: AbortSignal.timeout(this.taskTimeoutMs) })
      .then((result: TaskResult) => {
        const values = Buffer.from(result.buffer)
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve({ outcome: result.outcomes[i]!, values })
      })
      .catch((err: Error) => {
        const failure = new WorkerFailedError(`decode task failed: ${err.message}`)
        for (const p of batch) p.reject(failure)
      })
  }

  /** Busy share of the pool's threads since start (0..1). */
  get utilization(): number {
    return this.pool.utilization
  }

  get queueSize(): number {
    return this.pool.queueSize + this.pending.length
  }

  get threads(): number {
    return this.pool.threads.length
  }

  /** Fault tests: the next task kills (or hangs) the worker thread that runs it. */
  injectFault(fault: Fault): void {
    this.nextFault = fault
  }

  async close(): Promise<void> {
    await this.pool.destroy()
  }
}
