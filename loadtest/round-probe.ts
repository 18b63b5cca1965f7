import { readdirSync, readFileSync } from 'node:fs'

/**
 * Where one measured side of a noisy-neighbour round spent the machine (issue 15: why the valid
 * client's latency moved in some rounds): the gateway's CPU per thread (/proc/<pid>/task/<tid>/stat;
 * the event-loop thread is the one whose tid is the pid, a worker thread names itself with its
 * role in /proc, workers/thread-role.ts), the gateway event loop's GC pauses and its largest delay
 * (prom-client's default metrics, read before and after), and the whole machine's busy share of
 * its cores (/proc/stat). The generator's own dispatch lag is in the open-loop result beside it.
 */
export interface ProbeResult {
  /** CPU seconds per gateway thread over the side, by role ("main", a worker's name, or "other"). */
  readonly gateway_cpu_s: Record<string, number>
  /** GC pause seconds on the gateway's event loop, by kind (minor, major, incremental, weakcb). */
  readonly gateway_gc_s: Record<string, number>
  /** The gateway event loop's largest delay (ms, 10 ms resolution) over the side. */
  readonly gateway_loop_delay_max_ms: number
  /** Busy share of all the machine's cores (1 = every core busy the whole side). */
  readonly machine_busy: number
  /** Bodies decoded apart on the probation lane, and refused decode time charged (s), over the side. */
  readonly probation_bodies: number
  readonly refused_work_s: number
}

const PROBATION = 'adgate_probation_bodies_total'
const REFUSED = 'adgate_refused_work_seconds_total'
const TICK_S = 0.01 // USER_HZ = 100 on Linux

/** Starts probing the gateway `pid` at `url`; `stop()` returns what the side cost. */
export async function probeRound(url: string, pid: number): Promise<{ stop(): Promise<ProbeResult> }> {
  const text0 = await metricsText(url) // the scrape also resets the loop-delay histogram
  const gc0 = gcSeconds(text0)
  const threads0 = threadTicks(pid)
  const machine0 = machineTicks()
  return {
    async stop() {
      const text = await metricsText(url)
      const threads1 = threadTicks(pid)
      const machine1 = machineTicks()
      const gateway_cpu_s: Record<string, number> = {}
      for (const [tid, t] of threads1) {
        const used = (t.ticks - (threads0.get(tid)?.ticks ?? 0)) * TICK_S
        if (used > 0) gateway_cpu_s[t.role] = round3((gateway_cpu_s[t.role] ?? 0) + used)
      }
      const gc1 = gcSeconds(text)
      const gateway_gc_s: Record<string, number> = {}
      for (const [kind, s] of Object.entries(gc1)) gateway_gc_s[kind] = round3(s - (gc0[kind] ?? 0))
      return {
        gateway_cpu_s,
        gateway_gc_s,
        gateway_loop_delay_max_ms: round3(value(text, 'adgate_nodejs_eventloop_lag_max_seconds') * 1000),
        machine_busy: round3((machine1.busy - machine0.busy) / (machine1.total - machine0.total)),
        probation_bodies: value(text, PROBATION) - value(text0, PROBATION),
        refused_work_s: round3(value(text, REFUSED) - value(text0, REFUSED)),
      }
    },
  }
}

/** Each thread's CPU ticks and role: "main" for the event loop, else the name it gave itself. */
export function threadTicks(pid: number): Map<string, { ticks: number; role: string }> {
  const out = new Map<string, { ticks: number; role: string }>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const role = tid === String(pid) ? 'main' : name.startsWith('adgate-') ? name : 'other'
      out.set(tid, { ticks: Number(fields[11]) + Number(fields[12]), role })
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out
}

function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = cpu.reduce((a, b) => a + b, 0)
  return { busy: total - cpu[3]! - (cpu[4] ?? 0), total } // idle and iowait are not busy
}

function gcSeconds(text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^adgate_nodejs_gc_duration_seconds_sum\{kind="(\w+)"\} (\S+)$/gm))
    out[m[1]!] = Number(m[2])
  return out
}

function value(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : Number.NaN
}

async function metricsText(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })
  return res.text()
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}
