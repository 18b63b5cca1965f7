import { Piscina } from 'piscina'
import type { Encoding } from '../decoders/result.js'
import type { EventType } from '../events/catalog.js'
import type { KafkaRefusedError } from '../kafka/batch-sink.js'
import type { EncodedBatch } from '../kafka/protocol/record-batch.js'
import { attachRulesChannel } from '../quality/rules-channel.js'
import {
  type BodyFacts,
  type BodyMeta,
  type BodyOutcome,
  type DecodeTask,
  type Fault,
  runDecodeTask,
  type TaskResult,
} from './decode-task.js'
import { LoopLoad } from './loop-load.js'
import { ProbationLane } from './probation-lane.js'
import type { ThreadRole } from './thread-role.js'
import { type TaskSignal, Watchdog } from './watchdog.js'

export interface DecodeRequest extends BodyFacts {
  /**
   * The pool takes it over: a body that owns its whole ArrayBuffer (as the gateway's body reader
   * allocates them) and makes a task alone, or is at least TRANSFER_MIN_BYTES, is transferred to
   * the worker, not copied, and is empty here afterwards.
   */
  readonly body: Buffer
  /**
   * Set to its client when that client is on probation for refused work (gateway/refused-work.ts):
   * the body is decoded alone, on the probation lane's thread (probation-lane.ts), never inline nor
   * in a task beside other bodies.
   */
  readonly probation?: string
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
  /** The answer's `errors` array (RejectInfo[]) as JSON bytes, written by the worker; null: no rejects. */
  readonly rejectsJson: Buffer | null
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
  /** A task not done this long after it was submitted is taken as hung: its worker is replaced, its requests fail. */
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
  /**
   * Decode a lone body on this thread when no task is running and the thread has been quiet
   * (default: it used under INLINE_MAX_LOOP_CPU of a core over the last 100 ms): below that the
   * round trip to a worker costs more than the decode, two sleeping threads woken per request. Bodies arriving
   * while a task runs, several bodies at once, compressed bodies, bodies over INLINE_MAX_BYTES,
   * injected faults and everything while the loop is busy go to the workers. false: never.
   */
  readonly inline?: boolean | (() => boolean)
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
  run(task: DecodeTask, options: { transferList: ArrayBuffer[]; signal: TaskSignal }): Promise<TaskResult>
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
  /** What the thread is for (its name in /proc, workers/thread-role.ts). */
  readonly role?: ThreadRole
  readonly rules?: SharedArrayBuffer
  readonly schemaIds?: Readonly<Record<string, number>> | null
  readonly native: boolean
}

/** A body the gateway decodes at start to warm its decode threads up (generator/warm-up-bodies.ts). */
export interface WarmUpBody {
  readonly type: EventType
  readonly encoding: Encoding
  readonly body: Buffer
}

/** What a warm-up did: tasks run per thread ("main" is the event loop's inline decoding). */
export interface WarmUpReport {
  readonly rounds: Readonly<Record<string, number>>
  /** false: the deadline came before every thread did its rounds. */
  readonly complete: boolean
}

/**
 * Rounds of every warm-up body each shared decode thread decodes before the gateway says ready.
 * V8 tiers code up by calls: a decode thread's CPU time per round of the 48 warm-up bodies (4,800
 * events) was 1.2 s in the first, 0.1–0.25 s in rounds 2–15 and ~15 ms from round ~17 on
 * (a piscina decode thread alone, 2 runs, load 18), so a cold thread needs 5–10x the CPU per event of a warm one:
 * at 40k events/s a fresh gateway was overloaded for its first 3–4 s (README, "Load tests").
 */
export const WARM_UP_ROUNDS = 20
/**
 * Rounds for the probation lane's thread and the event loop's inline decoding: they take a new
 * client's first bodies and lone bodies of a quiet gateway, not the load, so past the first,
 * costliest rounds is enough.
 */
export const WARM_UP_ROUNDS_ASIDE = 5
/** Warm-up bodies per task, as a loaded gateway's tasks gather a few bodies. */
const WARM_UP_TASK_BODIES = 4

/** The probation lane's hang timeout, in decode timeouts (ADGATE_DECODE_TIMEOUT_MS). */
export const PROBATION_TIMEOUT_FACTOR = 10

/** The largest lone body decoded on the event loop: about half a millisecond of decoding. */
export const INLINE_MAX_BYTES = 64 * 1024
/**
 * The most thread CPU time a body decoded on the event loop may take; one that needs more (10k
 * invalid events fit in 29 KB and take ~50 ms) goes to a worker, its inline attempt thrown away.
 */
export const INLINE_BUDGET_MS = 2
/**
 * Share of a core the event-loop thread may use and still decode lone bodies itself; above it even
 * lone bodies go to the workers, so decoding never starves the loop and a busy gateway still uses
 * every core.
 */
export const INLINE_MAX_LOOP_CPU = 0.5

interface Pending {
  request: DecodeRequest
  resolve: (reply: DecodeReply) => void
  reject: (err: Error) => void
}

/**
 * Decoding off the event loop, in piscina workers, batched adaptively: when a worker is idle the
 * bodies of the current event-loop turn go at once (lowest latency); while all are busy, bodies
 * collect until one frees up, `lingerMs` passes or `maxTaskBytes` is reached, so a loaded gateway
 * writes fewer, larger Kafka batches. A task's bodies travel in one transferred (not cloned)
 * ArrayBuffer: a lone body's own, or the bodies copied into a new one; its output comes back the
 * same way. Bodies of clients on probation for refused work go to the probation lane instead:
 * one at a time, on one more thread, started when the first comes.
 */
export class DecodePool {
  private readonly pool: TaskRunner
  private pending: Pending[] = []
  private pendingBytes = 0
  private scheduled = false
  private lingerTimer: NodeJS.Timeout | null = null
  private running = 0
  private nextFault: Fault | undefined
  private readonly watchdog: Watchdog
  private readonly inlineNow: () => boolean
  private readonly threads: RunnerThreads
  /** The probation lane's one thread, started with its first body. */
  private probationRunner: TaskRunner | null = null
  private readonly probation = new ProbationLane<Pending>((p) =>
    this.runTask(this.probationLane(), [p], this.nextTask([p]), this.probationWatchdog),
  )
  /**
   * The lane's hang timeout is PROBATION_TIMEOUT_FACTOR times the workers': its thread runs at a
   * lower priority (thread-role.ts), so a body within its CPU budget can take that much longer on a
   * busy box, and only clients on probation wait behind it.
   */
  private readonly probationWatchdog: Watchdog

  constructor(private readonly options: PoolOptions) {
    this.watchdog = new Watchdog(options.taskTimeoutMs)
    this.probationWatchdog = new Watchdog(options.taskTimeoutMs * PROBATION_TIMEOUT_FACTOR)
    const inline = options.inline ?? true
    if (typeof inline === 'function') this.inlineNow = inline
    else if (inline) {
      const loop = new LoopLoad(INLINE_MAX_LOOP_CPU)
      this.inlineNow = () => loop.quiet()
    } else this.inlineNow = () => false
    // Inline tasks read the data-quality rules as the workers do.
    if (inline !== false) attachRulesChannel(options.rules)
    this.threads = {
      filename: options.filename ?? new URL('./decode-worker.js', import.meta.url).href,
      workers: options.workers,
      workerData: {
        role: 'decode',
        rules: options.rules,
        schemaIds: options.schemaIds ?? null,
        native: options.native ?? true,
      },
    }
    this.pool = this.startRunner(this.threads)
  }

  private probationLane(): TaskRunner {
    this.probationRunner ??= this.startRunner({
      ...this.threads,
      workers: 1,
      workerData: { ...this.threads.workerData, role: 'probation' },
    })
    return this.probationRunner
  }

  /**
   * Before the gateway says ready: every decode thread, the probation lane's (started now: a new
   * client's first bodies go there until one is decoded, gateway/refused-work.ts) and this thread's
   * inline decoding run `bodies` WARM_UP_ROUNDS times, or until `deadline`. Each thread has its own
   * JIT. The results are thrown away: nothing of the warm-up reaches Kafka, the spool or metrics.
   */
  async warmUp(bodies: readonly WarmUpBody[], deadline: number): Promise<WarmUpReport> {
    const rounds: Record<string, number> = {}
    if (bodies.length === 0) return { rounds, complete: true }
    const tasks = (): DecodeTask[] => {
      const out: DecodeTask[] = []
      for (let i = 0; i < bodies.length; i += WARM_UP_TASK_BODIES) {
        const batch = bodies.slice(i, i + WARM_UP_TASK_BODIES).map((b) => ({
          // A copy each time: the task takes its buffers over.
          request: {
            ...b,
            body: Buffer.from(b.body),
            contentEncoding: 'identity' as const,
            source: 'warm-up',
            requestId: 'warm-up',
            ingestTime: Date.now(),
          },
          resolve: () => {},
          reject: () => {},
        }))
        out.push(this.taskOf(batch))
      }
      return out
    }
    const want: Record<string, number> = {}
    const loop = async (name: string, run: (task: DecodeTask) => Promise<unknown>, n = WARM_UP_ROUNDS) => {
      rounds[name] = 0
      want[name] = n
      while (rounds[name]! < n && Date.now() < deadline) {
        for (const task of tasks()) await run(task)
        rounds[name]!++
      }
    }
    const onThread = (runner: TaskRunner, watchdog: Watchdog) => (task: DecodeTask) =>
      this.runGuarded(runner, task, watchdog)
    const inline = async (task: DecodeTask) => {
      runDecodeTask(task)
      await new Promise(setImmediate) // the event loop keeps answering (/readyz, /metrics) meanwhile
    }
    await Promise.all([
      ...Array.from({ length: this.options.workers }, (_, i) =>
        loop(`decode-${i}`, onThread(this.pool, this.watchdog)),
      ),
      loop('probation', onThread(this.probationLane(), this.probationWatchdog), WARM_UP_ROUNDS_ASIDE),
      ...(this.options.inline === false ? [] : [loop('main', inline, WARM_UP_ROUNDS_ASIDE)]),
    ])
    return { rounds, complete: Object.entries(rounds).every(([name, n]) => n >= want[name]!) }
  }

  private startRunner(threads: RunnerThreads): TaskRunner {
    return (this.options.startRunner ?? startPiscina)(threads)
  }

  decode(request: DecodeRequest): Promise<DecodeReply> {
    return new Promise((resolve, reject) => {
      if (request.probation !== undefined) {
        this.probation.push(request.probation, { request, resolve, reject })
        return
      }
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
    this.pendingBytes = 0
    const task = this.nextTask(batch)
    const r = batch[0]!.request
    const lone = batch.length === 1 && r.contentEncoding === 'identity' && r.body.length <= INLINE_MAX_BYTES
    const inline = lone && this.running === 0 && task.fault === undefined && this.inlineNow()
    if (inline && this.decodeHere(batch, task)) return
    this.running++
    this.runTask(this.pool, batch, task).finally(() => {
      this.running--
      // A worker is free: what collected while all were busy goes now.
      if (this.pending.length > 0 && !this.scheduled) {
        this.scheduled = true
        setImmediate(this.flushScheduled)
      }
    })
  }

  /** The next task to run, on whichever lane: it takes the fault armed for it (tests), if any. */
  private nextTask(batch: readonly Pending[]): DecodeTask {
    const task = this.taskOf(batch, this.nextFault)
    this.nextFault = undefined
    return task
  }

  /** The task of these bodies: their buffers, with the limits (and a fault to inject: tests). */
  private taskOf(batch: readonly Pending[], fault?: Fault): DecodeTask {
    const { buffers, places } = taskBuffers(batch)
    const bodies: BodyMeta[] = []
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i]!.request
      bodies.push({
        buffer: places[2 * i]!,
        offset: places[2 * i + 1]!,
        length: r.body.length,
        type: r.type,
        encoding: r.encoding,
        contentEncoding: r.contentEncoding,
        source: r.source,
        requestId: r.requestId,
        ingestTime: r.ingestTime,
      })
    }
    return {
      buffers,
      bodies,
      maxBytes: this.options.maxBytes,
      maxEvents: this.options.maxEvents,
      budgetMs: this.options.budgetMs,
      partitions: this.options.partitions(),
      fault,
    }
  }

  /** Runs a task on a thread under the watchdog and answers its requests; never rejects. */
  private runTask(
    runner: TaskRunner,
    batch: Pending[],
    task: DecodeTask,
    watchdog = this.watchdog,
  ): Promise<void> {
    return this.runGuarded(runner, task, watchdog).then(
      (result) => this.answer(batch, result),
      (err: Error) => this.fail(batch, err),
    )
  }

  /** Runs a task on a thread, its buffers transferred, aborted by `watchdog` if it hangs. */
  private runGuarded(runner: TaskRunner, task: DecodeTask, watchdog: Watchdog): Promise<TaskResult> {
    const deadline = watchdog.start()
    return runner
      .run(task, { transferList: [...task.buffers], signal: deadline })
      .finally(() => watchdog.finish(deadline))
  }

  /**
   * Decodes a lone body on this thread within INLINE_BUDGET_MS; false: it needs more, and goes to a
   * worker (decoded there again, with the whole budget), so no body stalls the event loop for longer.
   */
  private decodeHere(batch: Pending[], task: DecodeTask): boolean {
    const budgetMs = Math.min(task.budgetMs ?? INLINE_BUDGET_MS, INLINE_BUDGET_MS)
    let result: TaskResult
    try {
      result = runDecodeTask({ ...task, budgetMs })
    } catch (err) {
      this.fail(batch, err as Error)
      return true
    }
    if (result.outcomes[0]!.error?.code === 'BODY_TOO_COSTLY' && budgetMs < (task.budgetMs ?? Infinity))
      return false
    this.answer(batch, result)
    return true
  }

  private answer(batch: Pending[], result: TaskResult): void {
    this.options.onTask?.(result)
    const output: TaskOutput = { buffer: Buffer.from(result.buffer), batches: result.batches }
    const rejects = Buffer.from(result.rejects)
    for (let i = 0; i < batch.length; i++) {
      const outcome = result.outcomes[i]!
      const at = outcome.rejects
      const rejectsJson = at === null ? null : rejects.subarray(at.offset, at.offset + at.length)
      batch[i]!.resolve({ outcome, rejectsJson, task: output })
    }
  }

  private fail(batch: Pending[], err: Error): void {
    this.options.onTask?.(null)
    const failure = new WorkerFailedError(`decode task failed: ${err.message}`, { cause: err })
    for (const p of batch) p.reject(failure)
  }

  get queueSize(): number {
    return this.pool.queueSize + this.pending.length + this.probation.size
  }

  /** Fault tests: the next task (a probation lane's too) kills (or hangs) the thread that runs it. */
  injectFault(fault: Fault): void {
    this.nextFault = fault
  }

  async close(): Promise<void> {
    this.watchdog.stop()
    this.probationWatchdog.stop()
    await Promise.all([this.pool.destroy(), this.probationRunner?.destroy()])
  }
}

/** Bodies at least this large travel in their own ArrayBuffer when they have one; smaller ones are copied. */
export const TRANSFER_MIN_BYTES = 16 * 1024
/** A place not yet known: the body is copied into the task's shared buffer. */
const COPIED = 0xffffffff

/**
 * The ArrayBuffers a task's bodies travel in, all transferred (never cloned), and where each body
 * is (`places`: buffer index, offset): a body that owns its ArrayBuffer (the body reader allocates
 * each body outside Node's pool) in that one when it is alone or at least TRANSFER_MIN_BYTES, the
 * others (small bodies, views into a pool) copied into one new buffer. Copying every body of a
 * task, as before, cost a copy and a second ArrayBuffer per body, and ArrayBuffer bytes are what
 * drive V8's external-memory mark-compacts at saturation; below 16 KiB a copy costs less than the
 * transfer of one more buffer.
 */
function taskBuffers(batch: readonly Pending[]): { buffers: ArrayBuffer[]; places: Uint32Array } {
  const buffers: ArrayBuffer[] = []
  const places = new Uint32Array(2 * batch.length)
  const own = (body: Buffer) =>
    body.buffer instanceof ArrayBuffer &&
    body.byteOffset === 0 &&
    body.buffer.byteLength === body.length &&
    (batch.length === 1 || body.length >= TRANSFER_MIN_BYTES) &&
    !buffers.includes(body.buffer) // the same buffer twice cannot be transferred
  let copied = 0
  let copiedBytes = 0
  for (let i = 0; i < batch.length; i++) {
    const body = batch[i]!.request.body
    if (own(body)) {
      places[2 * i] = buffers.length
      buffers.push(body.buffer as ArrayBuffer)
    } else {
      places[2 * i] = COPIED
      copied++
      copiedBytes += body.length
    }
  }
  if (copied === 0) return { buffers, places }
  const shared = buffers.length
  buffers.push(new ArrayBuffer(copiedBytes))
  const into = new Uint8Array(buffers[shared]!)
  let offset = 0
  for (let i = 0; i < batch.length; i++) {
    if (places[2 * i] !== COPIED) continue
    const body = batch[i]!.request.body
    into.set(body, offset)
    places[2 * i] = shared
    places[2 * i + 1] = offset
    offset += body.length
  }
  return { buffers, places }
}
