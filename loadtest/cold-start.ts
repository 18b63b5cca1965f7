import { MIX } from '../bench/lib/mix.js'
import { openLoop } from '../bench/lib/open-loop.js'
import { REPO_ROOT } from '../bench/lib/results.js'
import { ensureKafka, startGateway, stop } from '../bench/lib/servers.js'
import { mixedRequests, Timeline } from './lib.js'
import { threadTicks } from './round-probe.js'
import { waitReady } from './scenario.js'

/**
 * Issue 16's probe: what a freshly started gateway pays for in its first seconds. Starts a gateway
 * as the load tests do (this checkout's, or `--root DIR`'s build), optionally waits for /readyz,
 * then offers the steady mix open-loop and prints, per 1-s window of intended send time, p50/p99
 * and the CPU seconds each gateway thread used in that second, and the gateway's CPU-s per million
 * events over the whole load (what the cold JIT costs, whatever the latency on a busy machine).
 *
 *   node dist/loadtest/cold-start.js [--root DIR] [--seconds N] [--events-per-s N] [--no-ready]
 *                                    [--cpu-prof DIR]
 *
 * `--cpu-prof DIR`: the gateway runs under node --cpu-prof and writes one profile per thread (main
 * and each worker) into DIR when it stops (bench/lib/cpu-profile.ts reads them).
 */
const argv = process.argv.slice(2)
const opt = (flag: string) => {
  const i = argv.indexOf(flag)
  return i >= 0 ? argv[i + 1] : undefined
}
const root = opt('--root') ?? REPO_ROOT
const seconds = Number(opt('--seconds') ?? 10)
const eventsPerS = Number(opt('--events-per-s') ?? 40_000)

ensureKafka()
const t0 = Date.now()
const profDir = opt('--cpu-prof')
const gw = await startGateway({}, root, {
  nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
  awaitWarmUp: false,
})
const url = `http://127.0.0.1:${gw.port}`
const listeningMs = Date.now() - t0
const readyMs = argv.includes('--no-ready') ? null : (await waitReady(url, 120_000)) + listeningMs
const { requests, eventsPerRequest } = mixedRequests(MIX)
const timeline = new Timeline()
const cpu: Record<string, number>[] = []
const first = threadTicks(gw.child.pid!)
let last = first
const sampler = setInterval(() => {
  const now = threadTicks(gw.child.pid!)
  const second: Record<string, number> = {}
  for (const [tid, t] of now) {
    const used = (t.ticks - (last.get(tid)?.ticks ?? 0)) / 100
    if (used > 0) second[t.role] = Math.round(((second[t.role] ?? 0) + used) * 100) / 100
  }
  cpu.push(second)
  last = now
}, 1000)
const r = await openLoop({
  url,
  requests,
  rate: Math.round(eventsPerS / eventsPerRequest),
  seconds,
  onResponse: timeline.recorder(),
})
clearInterval(sampler)
// The gateway's CPU (all threads) for the whole load, every request answered: per million events.
let ticks = 0
for (const [tid, t] of threadTicks(gw.child.pid!)) ticks += t.ticks - (first.get(tid)?.ticks ?? 0)
const cpuPerMEvents = Math.round((ticks / 100 / (r.requests['2xx'] * eventsPerRequest)) * 1e6 * 100) / 100
await stop(gw)
process.stdout.write(
  `${JSON.stringify({ root, listening_ms: listeningMs, ready_ms: readyMs, p99_ms: r.latency_ms.p99, cpu_s_per_m_events: cpuPerMEvents, lag_p99_ms: r.schedule.lag_ms.p99, non2xx: r.requests.non2xx, errors: r.requests.errors })}\n`,
)
for (const [i, w] of timeline.windows(1).entries())
  process.stdout.write(`${JSON.stringify({ ...w, cpu_s: cpu[i] ?? null })}\n`)
