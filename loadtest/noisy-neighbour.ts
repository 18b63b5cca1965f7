import { spawn } from 'node:child_process'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { type OpenLoopResult, openLoop } from '../bench/lib/open-loop.js'
import { REPO_ROOT } from '../bench/lib/results.js'
import { bodies, metric } from '../bench/lib/servers.js'
import { median } from '../bench/lib/stats.js'
import { CONTENT_TYPE } from '../generator/encode.js'
import { startedAsBefore } from './generator-priority.js'
import { type ProbeResult, probeRound } from './round-probe.js'

/**
 * Issue 15's noisy neighbour: one client posts valid batches while another posts, one after
 * another, the most expensive bodies it can build for each decoder (noisy-client.ts, a process of
 * its own). The two are two clients as the gateway tells clients apart: two API keys
 * (NOISY_NEIGHBOUR_KEYS; on one address without keys, they would be one client).
 *
 * Two measurements, each in rounds of "alone" and "beside the neighbour" (in turn which first, so a
 * drift in the machine's load cancels out):
 * - open loop (the verdict): the valid client offers a fixed rate, `share` of the least it pushed
 *   alone closed-loop, and must be served beside the neighbour (2xx events/s ≥ 90 % of offered)
 *   with its latency beside the alone run's. A fixed rate measures the gateway's fairness: on 2
 *   cores a closed-loop client saturates both alone, so beside the neighbour it also measures the
 *   neighbour PROCESS's CPU. A round whose alone side was not served (the machine's other load
 *   took the cores) says nothing of the neighbour: it is counted inconclusive, not a failure.
 * - closed loop (reported): the most the valid client pushes, alone and beside the neighbour.
 * The gateway's side is deterministic and reported too: the decode time it charged for refused
 * work (adgate_refused_work_seconds_total, only the neighbour's bodies are refused) against what
 * ADGATE_REFUSED_CPU_MS_PER_S allows over the neighbour's time.
 */
export interface NoisyOptions {
  /** Seconds of each closed-loop side. */
  readonly closedSeconds: number
  /** Seconds of each open-loop side. */
  readonly openSeconds: number
  readonly rounds: number
  /** The open-loop rate as a share of the closed-loop rate alone. */
  readonly share?: number
  /** The open-loop rate in events/s instead (comparing two gateways at one rate). */
  readonly offeredEventsPerS?: number
  /**
   * A second gateway (the build before a change, same settings): its open-loop rounds are run
   * between this one's, at the same rate, each beside a neighbour of its own, so both see the same
   * machine. Reported as `baseline`.
   */
  readonly baselineUrl?: string
  /** The gateway's ADGATE_REFUSED_CPU_MS_PER_S and ADGATE_REQUEST_CPU_MS (default: NOISY_NEIGHBOUR_ENV's). */
  readonly refusedCpuMsPerS?: number
  readonly requestCpuMs?: number
  /** The gateways' process ids: each open-loop side then says where its CPU went (round-probe.ts). */
  readonly gatewayPid?: number
  readonly baselinePid?: number
}

export interface Side {
  /** 2xx events per second. */
  readonly events_per_s: number
}
export interface OpenSide extends Side {
  readonly non2xx: Record<string, number>
  readonly p50_ms: number
  readonly p99_ms: number
  readonly p999_ms: number
  readonly schedule_kept: boolean
  /** How late the generator dispatched its requests (p99): above a few ms the figure is partly the generator's. */
  readonly dispatch_lag_p99_ms: number
  /** Where the gateway and the machine spent the side's CPU (with the gateway's pid). */
  readonly probe?: ProbeResult
  /** The gateway's CPU seconds (all threads) per million 2xx events (with the gateway's pid). */
  readonly cpu_s_per_million_events?: number
}

export interface OpenRounds {
  readonly rounds: readonly OpenRound[]
  /** Served ÷ offered beside the neighbour over the conclusive rounds: the worst, and the median (NaN: none). */
  readonly served_share_min: number
  readonly served_share_median: number
  /** Answers to the valid client in the conclusive rounds that were not 2xx. */
  readonly non2xx: Record<string, number>
  /** Medians over the rounds (CPU per event: with the gateway's pid; alone, it is the valid traffic's cost). */
  readonly alone: SideMedians
  readonly with_neighbour: SideMedians
}
interface SideMedians {
  readonly p50_ms: number
  readonly p99_ms: number
  readonly cpu_s_per_million_events?: number
}
interface OpenRound {
  readonly alone: OpenSide
  readonly with_neighbour: OpenSide
  /** The alone side was served: the round says something of the neighbour. */
  readonly conclusive: boolean
  /** The neighbour's bodies answered during the side beside it, by status. */
  readonly neighbour_bodies: Record<string, number>
  /** The machine's 1-minute load average when the round started. */
  readonly load: number
}

export interface NoisyResult {
  readonly closed: {
    readonly rounds: readonly { alone: Side; with_neighbour: Side }[]
    /** Medians over the rounds. */
    readonly alone_events_per_s: number
    readonly with_neighbour_events_per_s: number
    /** Median of the rounds' ratios. */
    readonly ratio: number
  }
  readonly open: OpenRounds & { readonly offered_events_per_s: number }
  /** The same open-loop rounds against NoisyOptions.baselineUrl, interleaved with these. */
  readonly baseline?: OpenRounds
  /**
   * Answers to the valid client in the closed loop that were not 2xx, by status (must stay empty:
   * 16 connections never overload the gateway, so a 5xx there is the neighbour's doing).
   */
  readonly valid_non2xx: Record<string, number>
  /** What the neighbour's bodies got, by body kind and status. */
  readonly neighbour: Record<string, Record<string, number>>
  /** Seconds from the neighbour's first body to its last answer, over all rounds. */
  readonly neighbour_window_s: number
  /** Decode time the gateway charged for refused work, and what the limit allows over that window. */
  readonly refused_work_charged_s: number
  readonly refused_work_allowance_s: number
  /** The neighbour's bodies that waited for its share to drain, and that were refused 429. */
  readonly refused_work_delays: { readonly waited: number; readonly refused: number }
  /** The neighbour's bodies decoded apart, on the probation lane (workers/probation-lane.ts). */
  readonly probation_bodies: number
  /** The last open-loop round beside the neighbour. */
  readonly result: OpenLoopResult
}

const EVENTS_PER_REQUEST = 100
const VALID_KEY = 'valid-client-secret'
const NOISY_KEY = 'noisy-client-secret'
/** ADGATE_API_KEYS of the gateway under test. */
export const NOISY_NEIGHBOUR_KEYS = `valid:${VALID_KEY}:*,noisy:${NOISY_KEY}:*`
/** The gateway's refused-work limits the allowance is computed from (its defaults, set explicitly). */
export const NOISY_NEIGHBOUR_ENV = {
  ADGATE_WORKERS: '1',
  ADGATE_API_KEYS: NOISY_NEIGHBOUR_KEYS,
  ADGATE_REFUSED_CPU_MS_PER_S: '50',
  ADGATE_REQUEST_CPU_MS: '500',
}
const CLIENT = join(REPO_ROOT, 'dist', 'loadtest', 'noisy-client.js')
const VALID_HEADERS = { 'content-type': CONTENT_TYPE.json, 'x-api-key': VALID_KEY }
const VALID_BODIES = () => bodies('impression', 'json', 20, EVENTS_PER_REQUEST)

async function closedLoop(url: string, seconds: number, valid: Buffer[]): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/v1/impressions`,
    method: 'POST',
    connections: 16,
    duration: seconds,
    headers: VALID_HEADERS,
    requests: valid.map((body) => ({ method: 'POST', body })),
  })
}

async function openLoopAt(
  url: string,
  pid: number | undefined,
  eventsPerS: number,
  seconds: number,
  valid: Buffer[],
): Promise<{ raw: OpenLoopResult; side: OpenSide }> {
  const probe = pid === undefined ? null : await probeRound(url, pid)
  const r = await openLoop({
    url,
    requests: valid.map((body) => ({ path: '/v1/impressions', headers: VALID_HEADERS, body })),
    rate: eventsPerS / EVENTS_PER_REQUEST,
    seconds,
  })
  return { raw: r, side: openSide(r, seconds, await probe?.stop()) }
}

interface Neighbour {
  /** Starts posting for the seconds it was given; resolves to what its bodies got. */
  go(): Promise<Record<string, Record<string, number>>>
}

/** The neighbour (the compiled noisy-client.js), started and ready: its bodies are built. */
function neighbour(url: string, seconds: number, first: number): Promise<Neighbour> {
  const start = startedAsBefore([process.execPath, CLIENT, url, String(seconds), NOISY_KEY, String(first)])
  const child = spawn(start.command, start.args, { stdio: ['pipe', 'pipe', 'inherit'] })
  let out = ''
  const exited = new Promise<Record<string, Record<string, number>>>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code === 0)
        resolve(JSON.parse(out.slice(out.indexOf('\n') + 1)) as Record<string, Record<string, number>>)
      else reject(new Error(`${CLIENT} exited ${code}`))
    })
  })
  return new Promise((resolve, reject) => {
    exited.catch(reject)
    child.stdout.on('data', (d: Buffer) => {
      const wasReady = out.includes('\n')
      out += d.toString()
      if (!wasReady && out.startsWith('ready\n'))
        resolve({
          go: () => {
            child.stdin.end('go\n')
            return exited
          },
        })
    })
  })
}

/** Runs `measure` alone and beside a neighbour (`neighbourFirst`: that side first). */
async function round<T>(
  url: string,
  seconds: number,
  neighbourFirst: boolean,
  measure: () => Promise<T>,
  state: NeighbourState,
): Promise<{ alone: T; with_neighbour: T; neighbour: Record<string, number> }> {
  const sent = Object.values(state.counts).reduce(
    (n, c) => n + Object.values(c).reduce((a, b) => a + b, 0),
    0,
  )
  const ready = await neighbour(url, seconds, sent)
  const before = neighbourFirst ? null : await measure()
  const started = performance.now()
  const noisy = ready.go()
  const withNeighbour = await measure()
  const counts = await noisy
  state.windowMs += performance.now() - started
  const alone = before ?? (await measure())
  const answered: Record<string, number> = {}
  for (const [kind, statuses] of Object.entries(counts)) {
    const into = state.counts[kind] ?? {}
    state.counts[kind] = into
    for (const [status, n] of Object.entries(statuses)) {
      add(into, status, n)
      add(answered, status, n)
    }
  }
  return { alone, with_neighbour: withNeighbour, neighbour: answered }
}

interface NeighbourState {
  counts: Record<string, Record<string, number>>
  windowMs: number
}

export async function noisyNeighbour(url: string, o: NoisyOptions): Promise<NoisyResult> {
  const valid = VALID_BODIES()
  const state: NeighbourState = { counts: {}, windowMs: 0 }
  const valid_non2xx: Record<string, number> = {}
  const counters = async () => ({
    charged: await metric(url, 'adgate_refused_work_seconds_total', 0),
    waited: await metric(url, 'adgate_refused_work_delays_total{result="waited"}', 0),
    refused: await metric(url, 'adgate_refused_work_delays_total{result="refused"}', 0),
    probation: await metric(url, 'adgate_probation_bodies_total', 0),
  })
  const before = await counters()

  const closedRounds: { alone: Side; with_neighbour: Side }[] = []
  for (let i = 0; i < o.rounds; i++) {
    const r = await round(
      url,
      o.closedSeconds,
      i % 2 === 1,
      () => closedLoop(url, o.closedSeconds, valid),
      state,
    )
    for (const side of [r.alone, r.with_neighbour]) {
      for (const [code, n] of Object.entries(side.statusCodeStats ?? {}))
        if (!code.startsWith('2') && (n.count ?? 0) > 0) add(valid_non2xx, code, n.count ?? 0)
      if (side.errors > 0) add(valid_non2xx, 'errors', side.errors)
    }
    const perSecond = (a: autocannon.Result) => Math.round((a['2xx'] / o.closedSeconds) * EVENTS_PER_REQUEST)
    closedRounds.push({
      alone: { events_per_s: perSecond(r.alone) },
      with_neighbour: { events_per_s: perSecond(r.with_neighbour) },
    })
  }
  const aloneLeast = Math.min(...closedRounds.map((r) => r.alone.events_per_s))

  const offered = o.offeredEventsPerS ?? Math.round(aloneLeast * (o.share ?? 0.5))
  const open: OpenRound[] = []
  const baseline: OpenRound[] = []
  const baselineState: NeighbourState = { counts: {}, windowMs: 0 }
  let last: OpenLoopResult | undefined
  for (let i = 0; i < o.rounds; i++) {
    const measure = async (at: string, pid: number | undefined, into: OpenRound[], s: NeighbourState) => {
      const load = loadavg()[0]!
      const r = await round(
        at,
        o.openSeconds,
        i % 2 === 1,
        () => openLoopAt(at, pid, offered, o.openSeconds, valid),
        s,
      )
      into.push({
        alone: r.alone.side,
        with_neighbour: r.with_neighbour.side,
        conclusive: r.alone.side.events_per_s >= 0.9 * offered,
        neighbour_bodies: r.neighbour,
        load,
      })
      return r.with_neighbour.raw
    }
    const baselineSide = () => measure(o.baselineUrl!, o.baselinePid, baseline, baselineState)
    // In turn which gateway first, as the sides within a round.
    if (o.baselineUrl !== undefined && i % 2 === 1) await baselineSide()
    last = await measure(url, o.gatewayPid, open, state)
    if (o.baselineUrl !== undefined && i % 2 === 0) await baselineSide()
  }
  const after = await counters()
  const perS = (o.refusedCpuMsPerS ?? Number(NOISY_NEIGHBOUR_ENV.ADGATE_REFUSED_CPU_MS_PER_S)) / 1000
  const bodyS = (o.requestCpuMs ?? Number(NOISY_NEIGHBOUR_ENV.ADGATE_REQUEST_CPU_MS)) / 1000
  const window_s = state.windowMs / 1000
  return {
    closed: {
      rounds: closedRounds,
      alone_events_per_s: median(closedRounds.map((r) => r.alone.events_per_s)),
      with_neighbour_events_per_s: median(closedRounds.map((r) => r.with_neighbour.events_per_s)),
      ratio: median(closedRounds.map((r) => r.with_neighbour.events_per_s / r.alone.events_per_s)),
    },
    open: { offered_events_per_s: offered, ...summary(open, offered) },
    ...(o.baselineUrl === undefined ? {} : { baseline: summary(baseline, offered) }),
    valid_non2xx,
    neighbour: state.counts,
    neighbour_window_s: Math.round(window_s * 100) / 100,
    refused_work_charged_s: Math.round((after.charged - before.charged) * 1000) / 1000,
    // The share drains per second of the window; one second's worth is free, and one body may run
    // to its CPU budget before it is stopped (the neighbour sends one at a time).
    refused_work_allowance_s: Math.round((perS * (window_s + 1) + bodyS) * 1000) / 1000,
    refused_work_delays: { waited: after.waited - before.waited, refused: after.refused - before.refused },
    probation_bodies: after.probation - before.probation,
    result: last!,
  }
}

function openSide(s: OpenLoopResult, seconds: number, probe: ProbeResult | undefined): OpenSide {
  return {
    events_per_s: Math.round((s.requests['2xx'] / seconds) * EVENTS_PER_REQUEST),
    non2xx: non2xxOf(s),
    p50_ms: s.latency_ms.p50,
    p99_ms: s.latency_ms.p99,
    p999_ms: s.latency_ms.p999,
    schedule_kept: s.schedule.kept,
    dispatch_lag_p99_ms: s.schedule.lag_ms.p99,
    ...(probe === undefined
      ? {}
      : {
          probe,
          cpu_s_per_million_events:
            Math.round(
              (Object.values(probe.gateway_cpu_s).reduce((a, b) => a + b, 0) /
                ((s.requests['2xx'] * EVENTS_PER_REQUEST) / 1e6)) *
                100,
            ) / 100,
        }),
  }
}

/** Open-loop rounds summed up: served shares and answers over the conclusive ones, latency medians. */
function summary(rounds: readonly OpenRound[], offered: number): OpenRounds {
  const conclusive = rounds.filter((r) => r.conclusive)
  const served = conclusive.map((r) => r.with_neighbour.events_per_s / offered)
  const non2xx: Record<string, number> = {}
  for (const r of conclusive)
    for (const [code, n] of Object.entries(r.with_neighbour.non2xx)) add(non2xx, code, n)
  const medians = (side: 'alone' | 'with_neighbour'): SideMedians => {
    const cpu = rounds.flatMap((r) => r[side].cpu_s_per_million_events ?? [])
    return {
      p50_ms: median(rounds.map((r) => r[side].p50_ms)),
      p99_ms: median(rounds.map((r) => r[side].p99_ms)),
      ...(cpu.length === 0 ? {} : { cpu_s_per_million_events: median(cpu) }),
    }
  }
  return {
    rounds,
    served_share_min: served.length === 0 ? Number.NaN : Math.min(...served),
    served_share_median: served.length === 0 ? Number.NaN : median(served),
    non2xx,
    alone: medians('alone'),
    with_neighbour: medians('with_neighbour'),
  }
}

function non2xxOf(s: OpenLoopResult): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [code, n] of Object.entries(s.requests.status_codes)) if (!code.startsWith('2')) out[code] = n
  if (s.requests.errors > 0) out.errors = s.requests.errors
  return out
}

function add(counts: Record<string, number>, key: string, n: number): void {
  counts[key] = (counts[key] ?? 0) + n
}
