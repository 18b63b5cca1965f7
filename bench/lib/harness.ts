import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { nativeAddon } from '../../decoders/native-addon.js'
import { median } from './stats.js'

/**
 * Throughput of fixed workloads, measured side by side. Every workload is warmed up, its call
 * count per run is fixed from the warm-up, then the timed runs are interleaved (candidate,
 * baseline, candidate, …, rotating who goes first) so machine noise, GC and frequency changes
 * hit all of them alike. Reported figures are medians over the runs. One workload runs at a
 * time, on one thread: figures are per core.
 *
 * `measure` runs the workloads in this thread. `measureIsolated` gives each its own worker
 * thread, so its own V8 isolate and JIT feedback, still interleaved in time: use it when the
 * sides share library code whose call sites would turn polymorphic only because both run in one
 * process (avsc's readers, say), which production does not do.
 */
export interface Workload {
  /** Label, e.g. 'adgate decodeBody' or 'JSON.parse + ajv'. */
  readonly name: string
  /** Events one call handles. */
  readonly events: number
  /** Input bytes one call handles. */
  readonly bytes: number
  /** One unit of work; may return a promise, which is awaited. */
  readonly fn: () => unknown
}

/** A workload built inside a worker: `(await import(module))[factory](arg)` returns it. */
export interface IsolatedWorkload {
  /** File URL of the module, e.g. import.meta.url. */
  readonly module: string
  readonly factory: string
  /** Passed to the factory; must survive structured cloning. */
  readonly arg?: unknown
}

export interface HarnessOptions {
  /** Warm-up per workload (JIT, caches). */
  readonly warmupMs?: number
  /** Timed runs per workload. */
  readonly runs?: number
  /** Target length of one timed run; fixes the call count. */
  readonly runMs?: number
}

export interface Measurement {
  readonly name: string
  /** Median over runs. */
  readonly eventsPerSec: number
  /** Median over runs, in 10^6 bytes of input per second. */
  readonly mbPerSec: number
  /**
   * Median over runs: CPU seconds the process spent per 10^6 events (every thread: the sides run
   * one at a time, so it is the running side's, GC helpers included). Steadier than events/s on
   * a shared machine, where waiting for a core counts in wall time.
   */
  readonly cpuSecondsPerMillion: number
  /**
   * Median over runs: CPU seconds of the workload's own thread per 10^6 events (the native
   * addon's thread clock; NaN without it). Leaves out the GC and JIT helper threads, whose work
   * lands unevenly between runs: the steadier figure for a small workload on a busy machine.
   */
  readonly threadCpuSecondsPerMillion: number
  /** (max − min) / median of the runs' events/s: how noisy the figure is. */
  readonly spread: number
  readonly runs: number
  readonly callsPerRun: number
}

export const DEFAULT_OPTIONS: Required<HarnessOptions> = { warmupMs: 500, runs: 15, runMs: 200 }

/** A --quick run's: enough calls to show the workload runs and yields numbers, no more. */
export const QUICK_OPTIONS: Required<HarnessOptions> = { warmupMs: 20, runs: 2, runMs: 20 }

/** What the scheduler needs of a workload, wherever it runs. */
interface Runner {
  readonly name: string
  readonly events: number
  readonly bytes: number
  /** Runs calls for at least `ms`; returns the mean milliseconds per call. */
  warmup(ms: number): Promise<number>
  /** Runs `calls` calls; returns the seconds they took. */
  timed(calls: number): Promise<Timed>
  close(): Promise<void>
}

export function measure(
  workloads: readonly Workload[],
  options: HarnessOptions = {},
): Promise<Measurement[]> {
  return schedule(workloads.map(localRunner), options)
}

export async function measureIsolated(
  workloads: readonly IsolatedWorkload[],
  options: HarnessOptions = {},
): Promise<Measurement[]> {
  const runners: Runner[] = []
  try {
    for (const w of workloads) runners.push(await workerRunner(w))
    return await schedule(runners, options)
  } finally {
    await Promise.all(runners.map((r) => r.close()))
  }
}

async function schedule(runners: readonly Runner[], options: HarnessOptions): Promise<Measurement[]> {
  const { warmupMs, runs, runMs } = { ...DEFAULT_OPTIONS, ...options }
  const calls: number[] = []
  for (const r of runners) calls.push(Math.max(1, Math.round(runMs / (await r.warmup(warmupMs)))))
  const samples: number[][] = runners.map(() => [])
  const cpu: number[][] = runners.map(() => [])
  const threadCpu: number[][] = runners.map(() => [])
  for (let run = 0; run < runs; run++) {
    for (let k = 0; k < runners.length; k++) {
      const i = (k + run) % runners.length
      const r = runners[i]!
      const { seconds, cpuSeconds, threadCpuSeconds } = await r.timed(calls[i]!)
      samples[i]!.push((r.events * calls[i]!) / seconds)
      cpu[i]!.push((cpuSeconds / (r.events * calls[i]!)) * 1e6)
      threadCpu[i]!.push((threadCpuSeconds / (r.events * calls[i]!)) * 1e6)
    }
  }
  return runners.map((r, i) => {
    const s = samples[i]!
    const eventsPerSec = median(s)
    return {
      name: r.name,
      eventsPerSec,
      mbPerSec: (eventsPerSec * (r.bytes / r.events)) / 1e6,
      cpuSecondsPerMillion: median(cpu[i]!),
      threadCpuSecondsPerMillion: median(threadCpu[i]!),
      spread: (Math.max(...s) - Math.min(...s)) / eventsPerSec,
      runs,
      callsPerRun: calls[i]!,
    }
  })
}

// Results land here so no call's work can be optimised away.
let sink: unknown

/** The last result a workload returned (keeps every result observable). */
export function lastResult(): unknown {
  return sink
}

/** Warm-up and timed loops of one workload in the calling thread (the worker uses these too). */
export async function warmupLoop(w: Workload, ms: number): Promise<number> {
  let n = 0
  const start = performance.now()
  while (performance.now() - start < ms || n < 2) {
    const pending = call(w)
    if (pending) await pending
    n++
  }
  return (performance.now() - start) / n
}

/** What one timed run took: wall-clock seconds, CPU seconds of the whole process and of this thread (NaN: no native clock). */
export interface Timed {
  readonly seconds: number
  readonly cpuSeconds: number
  readonly threadCpuSeconds: number
}

const threadCpuMs = nativeAddon().addon?.threadCpuMs ?? (() => Number.NaN)

export async function timedLoop(w: Workload, calls: number): Promise<Timed> {
  const cpu = process.cpuUsage()
  const threadStart = threadCpuMs()
  const start = performance.now()
  for (let c = 0; c < calls; c++) {
    const pending = call(w)
    if (pending) await pending
  }
  const seconds = (performance.now() - start) / 1000
  const threadCpuSeconds = (threadCpuMs() - threadStart) / 1000
  const { user, system } = process.cpuUsage(cpu)
  return { seconds, cpuSeconds: (user + system) / 1e6, threadCpuSeconds }
}

// Awaiting only real promises keeps synchronous workloads free of a microtask per call.
function call(w: Workload): Promise<void> | undefined {
  const out = w.fn()
  if (out instanceof Promise) {
    return out.then((v) => {
      sink = v
    })
  }
  sink = out
  return undefined
}

function localRunner(w: Workload): Runner {
  return {
    name: w.name,
    events: w.events,
    bytes: w.bytes,
    warmup: (ms) => warmupLoop(w, ms),
    timed: (calls) => timedLoop(w, calls),
    close: async () => {},
  }
}

// The worker's file, beside this one (.js from dist/, .ts under a TS loader).
const WORKER = new URL(`./isolate-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url)

export type WorkerRequest = { op: 'warmup'; ms: number } | { op: 'timed'; calls: number }
export type WorkerReply =
  | { ok: true; name: string; events: number; bytes: number }
  | { ok: true; value: number }
  | { ok: true; timed: Timed }
  | { ok: false; error: string }

async function workerRunner(spec: IsolatedWorkload): Promise<Runner> {
  const worker = new Worker(WORKER, { workerData: spec })
  let pending: { resolve: (r: WorkerReply) => void; reject: (e: Error) => void } | undefined
  worker.on('message', (reply: WorkerReply) => pending?.resolve(reply))
  worker.on('error', (err) => pending?.reject(err))
  worker.on('exit', (code) => pending?.reject(new Error(`bench worker ${spec.factory} exited (${code})`)))
  const next = () =>
    new Promise<WorkerReply>((resolve, reject) => {
      pending = { resolve, reject }
    })
  const expect = async <T extends WorkerReply>(): Promise<T> => {
    const reply = await next()
    if (!reply.ok) throw new Error(`bench worker ${spec.factory}: ${reply.error}`)
    return reply as T
  }
  const ask = async <T extends WorkerReply>(request: WorkerRequest): Promise<T> => {
    const reply = expect<T>()
    worker.postMessage(request)
    return reply
  }
  const ready = await expect<{ ok: true; name: string; events: number; bytes: number }>()
  return {
    name: ready.name,
    events: ready.events,
    bytes: ready.bytes,
    warmup: async (ms) => (await ask<{ ok: true; value: number }>({ op: 'warmup', ms })).value,
    timed: async (calls) => (await ask<{ ok: true; timed: Timed }>({ op: 'timed', calls })).timed,
    close: async () => {
      await worker.terminate()
    },
  }
}
