/**
 * Throughput of fixed workloads, measured side by side. Every workload is warmed up, its call
 * count per run is fixed from the warm-up, then the timed runs are interleaved (candidate,
 * baseline, candidate, …, rotating who goes first) so machine noise, GC and frequency changes
 * hit all of them alike. Reported figures are medians over the runs. Single-threaded: figures
 * are per core.
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
  /** (max − min) / median of the runs' events/s: how noisy the figure is. */
  readonly spread: number
  readonly runs: number
  readonly callsPerRun: number
}

export const DEFAULT_OPTIONS: Required<HarnessOptions> = { warmupMs: 500, runs: 9, runMs: 300 }

// Results land here so no call's work can be optimised away.
let sink: unknown

export async function measure(
  workloads: readonly Workload[],
  options: HarnessOptions = {},
): Promise<Measurement[]> {
  const { warmupMs, runs, runMs } = { ...DEFAULT_OPTIONS, ...options }
  const calls: number[] = []
  for (const w of workloads) {
    let n = 0
    const start = now()
    while (now() - start < warmupMs || n < 2) {
      const pending = call(w)
      if (pending) await pending
      n++
    }
    const perCall = (now() - start) / n
    calls.push(Math.max(1, Math.round(runMs / perCall)))
  }

  const samples: number[][] = workloads.map(() => [])
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < workloads.length; k++) {
      const i = (k + r) % workloads.length
      const w = workloads[i]!
      const n = calls[i]!
      const start = now()
      for (let c = 0; c < n; c++) {
        const pending = call(w)
        if (pending) await pending
      }
      const seconds = (now() - start) / 1000
      samples[i]!.push((w.events * n) / seconds)
    }
  }

  return workloads.map((w, i) => {
    const s = samples[i]!
    const eventsPerSec = median(s)
    return {
      name: w.name,
      eventsPerSec,
      mbPerSec: (eventsPerSec * (w.bytes / w.events)) / 1e6,
      spread: (Math.max(...s) - Math.min(...s)) / eventsPerSec,
      runs,
      callsPerRun: calls[i]!,
    }
  })
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

function now(): number {
  return performance.now()
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Keeps `sink` observable (and the linter content). */
export function lastResult(): unknown {
  return sink
}
