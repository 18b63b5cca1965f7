// Watching a running gateway from outside: its memory high-water mark (/proc), /readyz and /metrics.
import { readFileSync } from 'node:fs'
import { type Load, sleep, waitFor } from './load.js'

export { metric } from '../../../bench/lib/servers.js'

/** Peak resident memory of each process watched, from /proc/<pid>/status VmHWM (kB). */
export class RssWatch {
  private readonly peakKb = new Map<number, number>()
  private timers: NodeJS.Timeout[] = []

  /** Sample VmHWM of pid every 200 ms while it lives (a killed process keeps its last sample). */
  watch(pid: number | undefined): void {
    if (pid === undefined) return
    this.sample(pid)
    const t = setInterval(() => this.sample(pid), 200)
    t.unref()
    this.timers.push(t)
  }

  private sample(pid: number): void {
    const kb = hwmKb(pid)
    if (kb !== null) this.peakKb.set(pid, Math.max(this.peakKb.get(pid) ?? 0, kb))
  }

  /** The highest peak among the given processes, in MB (sampled once more if still alive). */
  peakMb(...pids: (number | undefined)[]): number {
    let kb = 0
    for (const pid of pids) {
      if (pid === undefined) continue
      this.sample(pid)
      kb = Math.max(kb, this.peakKb.get(pid) ?? 0)
    }
    return Math.round((kb / 1024) * 10) / 10
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t)
    this.timers = []
  }
}

function hwmKb(pid: number): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : null
  } catch {
    return null // gone, or no /proc
  }
}

export interface Readiness {
  status: number
  ready: boolean
  kafka: boolean
  pending_bytes: number
  spool: { bytes: number; max_bytes: number; entries: number; full: boolean } | null
}

export async function readyz(url: string): Promise<Readiness> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) })
  return { status: res.status, ...((await res.json()) as Omit<Readiness, 'status'>) }
}

/** Samples of /readyz taken in the background (every intervalMs) while a scenario runs. */
export class ReadyPoller {
  readonly samples: { at: number; r: Readiness | null; error: string | null }[] = []
  private on = true
  private readonly loop: Promise<void>

  constructor(
    private readonly target: () => string | null,
    intervalMs = 200,
  ) {
    this.loop = (async () => {
      while (this.on) {
        const url = this.target()
        if (url !== null) {
          const at = Date.now()
          try {
            this.samples.push({ at, r: await readyz(url), error: null })
          } catch (err) {
            this.samples.push({ at, r: null, error: (err as Error).message })
          }
        }
        await sleep(intervalMs)
      }
    })()
  }

  async stop(): Promise<void> {
    this.on = false
    await this.loop
  }
}

/** Wait until the spool is empty and Kafka is connected (the replayer drained everything). */
export async function waitDrained(url: string, timeoutMs: number, detail = () => ''): Promise<number> {
  const started = Date.now()
  let last: Readiness | null = null
  await waitFor(
    'the spool to drain into Kafka (/readyz spool.entries 0, kafka true)',
    async () => {
      try {
        last = await readyz(url)
      } catch {
        return false
      }
      return last.kafka && (last.spool?.entries ?? 0) === 0
    },
    timeoutMs,
    () => `last /readyz: ${JSON.stringify(last)}\n${detail()}`,
  )
  return Date.now() - started
}

/**
 * After a fault is repaired: the spool drained into Kafka, then 20 requests sent after that were
 * acknowledged (the gateway takes traffic again). Resolves with the time the drain was seen.
 */
export async function waitRecovered(
  url: string,
  load: Load,
  timeouts: { drainMs: number; ackedMs: number },
  detail = () => '',
): Promise<number> {
  await waitDrained(url, timeouts.drainMs, detail)
  const drained = Date.now()
  await load.waitAcked('20 requests acknowledged after the drain', 20, drained, timeouts.ackedMs, detail)
  return drained
}

/** Wait until the spool holds at least `entries` batches (the gateway is spooling). */
export async function waitSpooled(
  url: string,
  entries: number,
  timeoutMs: number,
  detail = () => '',
): Promise<void> {
  let last: Readiness | null = null
  await waitFor(
    `the spool to hold ${entries} batches`,
    async () => {
      try {
        last = await readyz(url)
      } catch {
        return false
      }
      return (last.spool?.entries ?? 0) >= entries
    },
    timeoutMs,
    () => `last /readyz: ${JSON.stringify(last)}\n${detail()}`,
  )
}
