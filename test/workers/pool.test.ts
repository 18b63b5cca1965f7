// workers/pool.ts against the TypeScript source, with a fake in place of piscina: no threads, no
// Kafka. The fake records each task and lets the test decide when (and how) it finishes.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import {
  type BodyOutcome,
  type DecodeTask,
  runDecodeTask,
  type TaskResult,
} from '../../workers/decode-task.js'
import {
  DecodePool,
  type DecodeRequest,
  INLINE_MAX_BYTES,
  type PoolOptions,
  type RunnerThreads,
  type TaskRunner,
  TRANSFER_MIN_BYTES,
  WARM_UP_ROUNDS,
  WARM_UP_ROUNDS_ASIDE,
  WorkerFailedError,
} from '../../workers/pool.js'
import type { TaskSignal } from '../../workers/watchdog.js'

interface Call {
  readonly task: DecodeTask
  readonly transferList: ArrayBuffer[]
  readonly signal: TaskSignal
  /** The bodies as the task carried them (copied before the fake gives the buffer back). */
  readonly bodies: string[]
  finish(result?: TaskResult): void
  fail(err: Error): void
}

class FakeRunner implements TaskRunner {
  readonly calls: Call[] = []
  queueSize = 0
  destroyed = false
  constructor(readonly threads: RunnerThreads) {}

  run(task: DecodeTask, options: { transferList: ArrayBuffer[]; signal: TaskSignal }): Promise<TaskResult> {
    return new Promise((resolve, reject) => {
      const buffers = task.buffers.map((b) => Buffer.from(b))
      this.calls.push({
        task,
        ...options,
        bodies: task.bodies.map((b) => buffers[b.buffer]!.subarray(b.offset, b.offset + b.length).toString()),
        finish: (result = resultFor(task)) => resolve(result),
        fail: reject,
      })
    })
  }

  async destroy(): Promise<void> {
    this.destroyed = true
  }
}

function outcome(events: number): BodyOutcome {
  return { error: null, events, rejected: 0, rejects: null, flagged: 0, ruleRejects: 0, cpuMs: 0 }
}

/** A result whose outcome i counts the bytes of body i, so each request can be told apart. */
function resultFor(task: DecodeTask): TaskResult {
  return {
    buffer: new ArrayBuffer(3),
    rejects: new ArrayBuffer(0),
    batches: [],
    outcomes: task.bodies.map((b) => outcome(b.length)),
    rawBytes: 0,
    busyMs: 1,
  }
}

function request(body: string): DecodeRequest {
  return {
    body: Buffer.from(body),
    type: 'click',
    encoding: 'csv',
    contentEncoding: 'identity',
    source: 'test',
    requestId: `r-${body}`,
    ingestTime: 1_700_000_000_000,
  }
}

const turn = () => new Promise((r) => setImmediate(r))

/** The pool, its workers' runner, and the probation lane's (started with the lane's first body). */
function pool(options: Partial<PoolOptions> = {}): {
  pool: DecodePool
  runner: () => FakeRunner
  lane: () => FakeRunner | undefined
} {
  const runners: FakeRunner[] = []
  const p = new DecodePool({
    workers: 1,
    maxBytes: 1 << 20,
    maxEvents: 1000,
    partitions: () => ({ 'adgate.clicks': 4 }),
    maxTaskBytes: 1 << 20,
    lingerMs: 50,
    taskTimeoutMs: 5000,
    inline: false,
    ...options,
    startRunner: (threads) => {
      runners.push(new FakeRunner(threads))
      return runners.at(-1)!
    },
  })
  return { pool: p, runner: () => runners[0]!, lane: () => runners[1] }
}

describe('DecodePool', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('starts its threads with the rules channel and the native setting, and stops them on close', async () => {
    const rules = new SharedArrayBuffer(8)
    const { pool: p, runner } = pool({ workers: 3, rules, native: false })
    expect(runner().threads).toMatchObject({ workers: 3, workerData: { rules, native: false } })
    expect(runner().threads.filename).toMatch(/decode-worker\.js$/)
    await p.close()
    expect(runner().destroyed).toBe(true)
    expect(pool().runner().threads.workerData.native).toBe(true)
  })

  it('with a worker idle, sends the bodies of one event-loop turn as one task, copied into one transferred buffer', async () => {
    const { pool: p, runner } = pool()
    const replies = [p.decode(request('aa')), p.decode(request('bbbb')), p.decode(request('c'))]
    expect(runner().calls).toHaveLength(0) // not yet: the rest of this turn may add bodies
    await turn()
    expect(runner().calls).toHaveLength(1)
    const call = runner().calls[0]!
    expect(call.bodies).toEqual(['aa', 'bbbb', 'c'])
    expect(call.transferList).toEqual(call.task.buffers)
    expect(call.task.buffers).toHaveLength(1)
    expect(call.task.bodies.map((b) => [b.buffer, b.offset, b.length, b.requestId])).toEqual([
      [0, 0, 2, 'r-aa'],
      [0, 2, 4, 'r-bbbb'],
      [0, 6, 1, 'r-c'],
    ])
    expect(call.task.partitions).toEqual({ 'adgate.clicks': 4 })
    expect(call.signal.aborted).toBe(false)
    call.finish()
    const answered = await Promise.all(replies)
    // Each request gets its own body's outcome; they share the task's output (delivered once).
    expect(answered.map((r) => r.outcome.events)).toEqual([2, 4, 1])
    expect(new Set(answered.map((r) => r.task)).size).toBe(1)
  })

  it('while every worker is busy, collects bodies until one frees up', async () => {
    const { pool: p, runner } = pool({ lingerMs: 60_000 })
    const first = p.decode(request('one'))
    await turn()
    const later = [p.decode(request('two')), p.decode(request('three'))]
    await turn()
    expect(runner().calls).toHaveLength(1)
    expect(p.queueSize).toBe(2)
    runner().calls[0]!.finish()
    await first
    await turn() // the freed worker's flush is queued after the reply
    await turn()
    expect(runner().calls).toHaveLength(2)
    expect(runner().calls[1]!.bodies).toEqual(['two', 'three'])
    runner().calls[1]!.finish()
    expect((await Promise.all(later)).map((r) => r.outcome.events)).toEqual([3, 5])
  })

  it('while every worker is busy, sends what collected after lingerMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate'] })
    const { pool: p, runner } = pool({ lingerMs: 20 })
    void p.decode(request('one'))
    vi.advanceTimersToNextTimer() // the idle-worker flush (setImmediate)
    expect(runner().calls).toHaveLength(1)
    void p.decode(request('two'))
    vi.advanceTimersByTime(19)
    expect(runner().calls).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(runner().calls).toHaveLength(2)
    expect(runner().calls[1]!.bodies).toEqual(['two'])
  })

  it('closes a task at once when its bodies reach maxTaskBytes', () => {
    const { pool: p, runner } = pool({ maxTaskBytes: 6 })
    void p.decode(request('abc'))
    expect(runner().calls).toHaveLength(0)
    void p.decode(request('def'))
    expect(runner().calls).toHaveLength(1) // synchronously, in decode()
    expect(runner().calls[0]!.bodies).toEqual(['abc', 'def'])
  })

  it('fails every request of a task whose worker failed, and reports the task as failed', async () => {
    const onTask = vi.fn()
    const { pool: p, runner } = pool({ onTask })
    const replies = [p.decode(request('x')), p.decode(request('y'))]
    await turn()
    runner().calls[0]!.fail(new Error('worker exited'))
    for (const r of replies) {
      await expect(r).rejects.toBeInstanceOf(WorkerFailedError)
      await expect(r).rejects.toThrow(/decode task failed: worker exited/)
    }
    expect(onTask).toHaveBeenCalledWith(null)
  })

  it('gives every task the decode timeout as an abort signal', async () => {
    const { pool: p, runner } = pool({ taskTimeoutMs: 30 })
    void p.decode(request('x'))
    await turn()
    const { signal } = runner().calls[0]!
    await new Promise<void>((r) => signal.once('abort', r))
    expect(signal.aborted).toBe(true)
  })

  it('does not abort a task that finished in time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'performance'] })
    const { pool: p, runner } = pool({ taskTimeoutMs: 30 })
    const reply = p.decode(request('x'))
    vi.advanceTimersToNextTimer() // the idle-worker flush
    const { signal, finish } = runner().calls[0]!
    const aborted = vi.fn()
    signal.once('abort', aborted)
    finish()
    await reply
    await vi.advanceTimersByTimeAsync(100) // microtasks first: the task's bookkeeping after its reply
    expect(aborted).not.toHaveBeenCalled()
    expect(signal.aborted).toBe(false)
  })

  it('transfers a lone body that owns its ArrayBuffer instead of copying it, and copies one that does not', async () => {
    const { pool: p, runner } = pool()
    const own = Buffer.allocUnsafeSlow(4)
    own.write('lone')
    void p.decode({ ...request(''), body: own })
    await turn()
    const lone = runner().calls[0]!
    expect(lone.task.buffers).toEqual([own.buffer])
    expect(lone.transferList).toEqual([own.buffer])
    expect(lone.bodies).toEqual(['lone'])
    lone.finish()
    await turn()
    const pooled = Buffer.from('pooled') // a view into Node's shared pool: never transferred
    void p.decode({ ...request(''), body: pooled })
    await turn()
    const copied = runner().calls[1]!
    expect(copied.task.buffers).toHaveLength(1)
    expect(copied.task.buffers[0]).not.toBe(pooled.buffer)
    expect(copied.bodies).toEqual(['pooled'])
  })

  it('in a task of several bodies, transfers each large body in its own ArrayBuffer and copies the small ones into one', async () => {
    const { pool: p, runner } = pool()
    const large = (fill: string) => {
      const b = Buffer.allocUnsafeSlow(TRANSFER_MIN_BYTES)
      b.fill(fill)
      return b
    }
    const a = large('a')
    const b = large('b')
    const sharedView = Buffer.allocUnsafeSlow(2 * TRANSFER_MIN_BYTES)
      .subarray(0, TRANSFER_MIN_BYTES)
      .fill('v')
    void p.decode({ ...request(''), body: a })
    void p.decode(request('small'))
    void p.decode({ ...request(''), body: b })
    void p.decode({ ...request(''), body: sharedView }) // not the whole of its buffer: copied
    void p.decode({ ...request(''), body: a }) // the same buffer again cannot be transferred twice: copied
    await turn()
    const call = runner().calls[0]!
    const [bufA, bufB, shared] = call.task.buffers
    expect(bufA).toBe(a.buffer)
    expect(bufB).toBe(b.buffer)
    expect(call.transferList).toEqual([a.buffer, b.buffer, shared])
    expect(shared!.byteLength).toBe(5 + 2 * TRANSFER_MIN_BYTES)
    expect(call.task.bodies.map((x) => [x.buffer, x.offset])).toEqual([
      [0, 0],
      [2, 0],
      [1, 0],
      [2, 5],
      [2, 5 + TRANSFER_MIN_BYTES],
    ])
    expect(call.bodies.map((x) => `${x[0]}${x.length}`)).toEqual([
      `a${TRANSFER_MIN_BYTES}`,
      's5',
      `b${TRANSFER_MIN_BYTES}`,
      `v${TRANSFER_MIN_BYTES}`,
      `a${TRANSFER_MIN_BYTES}`,
    ])
  })

  it('hands an injected fault to the next task only', async () => {
    const { pool: p, runner } = pool({ workers: 2 })
    p.injectFault('crash')
    void p.decode(request('x'))
    await turn()
    void p.decode(request('y'))
    await turn()
    expect(runner().calls.map((c) => c.task.fault)).toEqual(['crash', undefined])
  })

  it('hands an injected fault to the next task on the probation lane too (a client on probation still meets it)', async () => {
    const { pool: p, runner, lane } = pool({ workers: 2 })
    p.injectFault('crash')
    void p.decode({ ...request('n'), probation: 'noisy' })
    await turn()
    void p.decode(request('y'))
    await turn()
    expect(lane()!.calls.map((c) => c.task.fault)).toEqual(['crash'])
    expect(runner().calls.map((c) => c.task.fault)).toEqual([undefined])
  })

  it('decodes a lone body on this thread while no task runs; several bodies, a body arriving meanwhile, a compressed or large body and a fault go to the workers', async () => {
    const onTask = vi.fn()
    const { pool: p, runner } = pool({ inline: () => true, onTask, workers: 2 })
    const body = encodeEvents('click', generateEvents('click', 5, 3), 'csv')
    const here = await p.decode({ ...request(''), body })
    expect(here.outcome).toMatchObject({ error: null, events: 5 })
    expect(here.task.batches.length).toBeGreaterThan(0)
    expect(runner().calls).toHaveLength(0)
    expect(onTask).toHaveBeenCalledTimes(1)

    void p.decode(request('a'))
    void p.decode(request('b'))
    await turn()
    expect(runner().calls.map((c) => c.bodies)).toEqual([['a', 'b']]) // two at once
    void p.decode({ ...request(''), body }) // a task is running
    await turn()
    expect(runner().calls).toHaveLength(2)
    runner().calls[0]!.finish()
    runner().calls[1]!.finish()
    await turn()

    // Alone, with no task running, yet to a worker: compressed, too large, or carrying a fault.
    const alone = async (r: DecodeRequest) => {
      const reply = p.decode(r)
      await turn()
      const call = runner().calls.at(-1)!
      call.finish()
      await reply
      return [call.bodies[0]!.length, call.task.fault]
    }
    expect(await alone({ ...request('gz'), contentEncoding: 'gzip' })).toEqual([2, undefined])
    expect(await alone({ ...request(''), body: Buffer.alloc(INLINE_MAX_BYTES + 1, 'x') })).toEqual([
      INLINE_MAX_BYTES + 1,
      undefined,
    ])
    p.injectFault('crash')
    expect(await alone(request('f'))).toEqual([1, 'crash'])
    expect(runner().calls).toHaveLength(5)
  })

  it('sends a lone body to a worker while the event loop is busy', async () => {
    let quiet = false
    const { pool: p, runner } = pool({ inline: () => quiet })
    void p.decode(request('busy'))
    await turn()
    expect(runner().calls.map((c) => c.bodies)).toEqual([['busy']])
    runner().calls[0]!.finish()
    await turn()
    quiet = true
    const body = encodeEvents('click', generateEvents('click', 1, 3), 'csv')
    expect((await p.decode({ ...request(''), body })).outcome.events).toBe(1)
    expect(runner().calls).toHaveLength(1)
  })

  it('inline, a decode that throws fails its request as a worker failure would (503), and the pool goes on', async () => {
    let broken = true
    const counts = { 'adgate.clicks': 4, 'adgate.dlq': 4 } as Record<string, number>
    // A partition table that throws when the decode reads it: a bug inside runDecodeTask, once.
    const partitions = () =>
      new Proxy(counts, {
        get: (target, topic: string) => {
          if (broken) throw new Error('broken partition table')
          return target[topic]
        },
      })
    const { pool: p } = pool({ inline: () => true, partitions })
    const body = encodeEvents('click', generateEvents('click', 2, 3), 'csv')
    await expect(p.decode({ ...request(''), body })).rejects.toThrow(/decode task failed: broken partition/)
    broken = false
    expect((await p.decode({ ...request(''), body })).outcome.events).toBe(2)
  })

  it('decodes the bodies of clients on probation alone, one at a time, on a thread of their own started with the first, the clients in turn', async () => {
    const { pool: p, runner, lane } = pool({ workers: 2 })
    const onProbation = (body: string, client: string) => p.decode({ ...request(body), probation: client })
    expect(lane()).toBeUndefined()
    const replies = [
      onProbation('n1', 'noisy'),
      p.decode(request('valid')),
      onProbation('n2', 'noisy'),
      onProbation('n3', 'noisy'),
      onProbation('m1', 'other'),
    ]
    await turn()
    // The valid body goes to the workers, in a task of its own; the probation bodies to the lane.
    expect(runner().calls.map((c) => c.bodies)).toEqual([['valid']])
    expect(lane()!.threads.workers).toBe(1)
    expect(lane()!.calls.map((c) => c.bodies)).toEqual([['n1']])
    expect(p.queueSize).toBe(3)
    runner().calls[0]!.finish()
    for (let i = 0; i < 4; i++) {
      lane()!.calls[i]!.finish()
      await turn()
    }
    // n1 was running when n2, n3 and m1 came: noisy's next, then the other client's turn.
    expect(lane()!.calls.map((c) => c.bodies)).toEqual([['n1'], ['n2'], ['m1'], ['n3']])
    const answered = await Promise.all(replies)
    expect(answered.map((r) => r.outcome.events)).toEqual([2, 5, 2, 2, 2])
    await p.close()
    expect(lane()!.destroyed).toBe(true)
  })

  it("sends a lone body whose decode needs more than INLINE_BUDGET_MS to a worker, and answers with the worker's result", async () => {
    const onTask = vi.fn()
    const { pool: p, runner } = pool({ inline: () => true, onTask, maxEvents: 100_000, budgetMs: 500 })
    // 20k invalid events in 60 KB: ~100 ms of decoding, refused inline after ~2 ms of it.
    const body = Buffer.from('{}\n'.repeat(20_000))
    expect(body.length).toBeLessThanOrEqual(INLINE_MAX_BYTES)
    const reply = p.decode({ ...request(''), body, type: 'impression', encoding: 'ndjson' })
    await turn()
    expect(runner().calls).toHaveLength(1)
    const call = runner().calls[0]!
    expect(call.task.budgetMs).toBe(500) // the worker gets the whole budget
    expect(call.bodies[0]).toBe(body.toString())
    call.finish()
    expect((await reply).outcome.events).toBe(body.length) // the fake's outcome: the inline one was dropped
    expect(onTask).toHaveBeenCalledTimes(1)
  })

  it('returns what a real decode task returns, in-process (the fake runs runDecodeTask)', async () => {
    const p = new DecodePool({
      workers: 1,
      maxBytes: 1 << 20,
      maxEvents: 1000,
      partitions: () => ({ 'adgate.clicks': 4, 'adgate.dlq': 4 }),
      maxTaskBytes: 1 << 20,
      lingerMs: 1,
      taskTimeoutMs: 5000,
      startRunner: () => ({
        queueSize: 0,
        run: async (task) => runDecodeTask(task),
        destroy: async () => {},
      }),
    })
    const body = encodeEvents('click', generateEvents('click', 25, 7), 'csv')
    const [good, bad] = await Promise.all([
      p.decode({ ...request(''), body }),
      p.decode({ ...request(''), body: Buffer.from('not,a,click\n1,2,3\n') }),
    ])
    expect(good.outcome).toMatchObject({ error: null, events: 25, rejected: 0, rejects: null })
    expect(bad.outcome).toMatchObject({ events: 0, error: { code: 'MISSING_HEADER_ROW' } })
    // Both bodies' records (the events and the bad body's dead letter) are in the task's batches.
    expect(good.task.batches.length).toBeGreaterThan(0)
    await p.close()
  })

  it('warms up: every body WARM_UP_ROUNDS times on the workers and WARM_UP_ROUNDS_ASIDE on the probation lane, nothing reported as a task; cut short at the deadline', async () => {
    const onTask = vi.fn()
    const { pool: p, runner, lane } = pool({ workers: 2, onTask })
    const bodies = ['a', 'bb', 'ccc', 'dddd', 'eeeee'].map((b) => ({
      type: 'click' as const,
      encoding: 'csv' as const,
      body: Buffer.from(b),
    }))
    const finishing = setInterval(() => {
      for (const r of [runner(), lane()]) for (const c of r?.calls ?? []) c.finish()
    }, 0)
    const report = await p.warmUp(bodies, Date.now() + 60_000).finally(() => clearInterval(finishing))
    expect(report).toEqual({
      rounds: { 'decode-0': WARM_UP_ROUNDS, 'decode-1': WARM_UP_ROUNDS, probation: WARM_UP_ROUNDS_ASIDE },
      complete: true,
    })
    const decoded = (r: FakeRunner) => r.calls.flatMap((c) => c.bodies)
    expect(decoded(runner()).filter((b) => b === 'eeeee')).toHaveLength(2 * WARM_UP_ROUNDS)
    expect(decoded(lane()!).filter((b) => b === 'a')).toHaveLength(WARM_UP_ROUNDS_ASIDE)
    expect(runner().calls.every((c) => c.task.bodies.every((b) => b.source === 'warm-up'))).toBe(true)
    expect(onTask).not.toHaveBeenCalled()
    expect(p.queueSize).toBe(0)

    const late = pool({ workers: 1 })
    expect(await late.pool.warmUp(bodies, Date.now() - 1)).toMatchObject({ complete: false })
    expect(late.runner().calls).toHaveLength(0)
  })
})
