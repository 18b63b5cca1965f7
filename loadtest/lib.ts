import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Kind } from '../bench/lib/mix.js'
import type { OpenLoopRequest, OpenLoopResult } from '../bench/lib/open-loop.js'
import { commitId, machine, REPO_ROOT } from '../bench/lib/results.js'
import { bodies } from '../bench/lib/servers.js'
import { percentile } from '../bench/lib/stats.js'
import { EVENT_INFO } from '../events/catalog.js'
import { CONTENT_TYPE } from '../generator/encode.js'

export const RESULTS = join(REPO_ROOT, 'loadtest', 'results')

/** Open-loop request list interleaving the kinds by weight, bodies from the generator. */
export function mixedRequests(
  mix: Kind[],
  headers: Record<string, string> = {},
): { requests: OpenLoopRequest[]; eventsPerRequest: number } {
  const total = mix.reduce((a, k) => a + k.weight, 0)
  const pools = mix.map((k) => bodies(k.type, k.encoding, k.weight * 4, k.eventsPerRequest))
  const used = mix.map(() => 0)
  const requests: OpenLoopRequest[] = []
  let events = 0
  // Smooth weighted round robin over 4 cycles, so types interleave instead of arriving in runs.
  const credit = mix.map(() => 0)
  for (let n = 0; n < total * 4; n++) {
    for (let i = 0; i < mix.length; i++) credit[i]! += mix[i]!.weight
    let best = 0
    for (let i = 1; i < mix.length; i++) if (credit[i]! > credit[best]!) best = i
    credit[best]! -= total
    const k = mix[best]!
    requests.push({
      path: `/v1/${EVENT_INFO[k.type].route}`,
      headers: { 'content-type': CONTENT_TYPE[k.encoding], ...headers },
      body: pools[best]![used[best]!++ % pools[best]!.length]!,
    })
    events += k.eventsPerRequest
  }
  return { requests, eventsPerRequest: events / requests.length }
}

/**
 * Latencies bucketed by the second of their INTENDED send time (the open-loop generator's
 * onResponse), so a stall shows in the seconds it happened, not in the ones its answers came.
 */
export class Timeline {
  readonly buckets = new Map<number, { ms: number[]; fail: number; n: number }>()
  /** A generator's onResponse; `offsetMs` = when that generator started, from the run's start. */
  recorder(offsetMs = 0): (intendedMs: number, latencyMs: number, status: number) => void {
    return (intendedMs, latencyMs, status) =>
      this.add(Math.floor((offsetMs + intendedMs) / 1000), status, latencyMs)
  }
  add(s: number, status: number, ms: number): void {
    let b = this.buckets.get(s)
    if (!b) {
      b = { ms: [], fail: 0, n: 0 }
      this.buckets.set(s, b)
    }
    b.n++
    if (status === 0 || status >= 500) b.fail++
    if (status !== 0) b.ms.push(ms)
  }
  /** p50/p99/max and counts per window of `seconds`. */
  windows(
    seconds: number,
  ): { t_s: number; requests: number; failures: number; p50_ms: number; p99_ms: number }[] {
    const out = []
    const last = Math.max(0, ...this.buckets.keys())
    for (let start = 0; start <= last; start += seconds) {
      const ms: number[] = []
      let fail = 0
      let n = 0
      for (let s = start; s < start + seconds; s++) {
        const b = this.buckets.get(s)
        if (!b) continue
        for (const v of b.ms) ms.push(v)
        fail += b.fail
        n += b.n
      }
      out.push({
        t_s: start,
        requests: n,
        failures: fail,
        p50_ms: round2(percentile(ms, 0.5)),
        p99_ms: round2(percentile(ms, 0.99)),
      })
    }
    return out
  }
  between(fromS: number, toS: number): number[] {
    const ms: number[] = []
    for (const [s, b] of this.buckets) if (s >= fromS && s < toS) for (const v of b.ms) ms.push(v)
    return ms
  }
}

export function round2(x: number): number {
  return Math.round(x * 100) / 100
}

/** The load generator's own CPU use over a run: ≥ 0.9 of a core means it may have saturated. */
export class GeneratorMeter {
  private readonly cpu0 = process.cpuUsage()
  private readonly t0 = performance.now()
  share(): number {
    const d = process.cpuUsage(this.cpu0)
    return (d.user + d.system) / 1000 / (performance.now() - this.t0)
  }
}

export function generatorCheck(share: number): Check {
  return {
    name: 'generator CPU below saturation',
    ok: share < 0.9,
    detail: `load generator used ${(share * 100).toFixed(0)}% of one core`,
  }
}

export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface Outcome {
  scenario: string
  result: Record<string, unknown>
  checks: Check[]
}

/** 5xx answers in an open-loop result. */
export function fivexx(r: OpenLoopResult): number {
  return Object.entries(r.requests.status_codes).reduce(
    (a, [code, n]) => (Number(code) >= 500 ? a + n : a),
    0,
  )
}

/** Availability: share of requests answered with anything but a 5xx or a connection error. */
export function availability(r: OpenLoopResult): number {
  if (r.requests.sent === 0) return 0
  return (r.requests.sent - fivexx(r) - r.requests.errors) / r.requests.sent
}

/** The generator kept its schedule (offered rate and dispatch lag): else the run measured less than asked. */
export function scheduleCheck(r: OpenLoopResult, what = 'generator kept its schedule'): Check {
  return {
    name: what,
    ok: r.schedule.kept,
    detail: `${r.achieved_rate.toFixed(0)} of ${r.intended_rate.toFixed(0)} req/s sent on time, dispatch lag p99 ${r.schedule.lag_ms.p99} ms${r.schedule.why ? ` (${r.schedule.why})` : ''}; generator used ${(r.generator_cpu_share * 100).toFixed(0)}% of a core`,
  }
}

/** The contract fields, computed from an open-loop result (latency from the intended send time). */
export function contractFields(
  scenario: string,
  r: OpenLoopResult,
  eventsPerRequest: number,
  seconds: number,
): Record<string, unknown> {
  return {
    ...r,
    scenario,
    events_per_s: Math.round((r.requests['2xx'] / seconds) * eventsPerRequest),
    p50_ms: r.latency_ms.p50,
    p99_ms: r.latency_ms.p99,
    p999_ms: r.latency_ms.p999,
    errors: r.requests.errors,
    non2xx: r.requests.non2xx,
  }
}

export function writeOutcome(o: Outcome): string {
  mkdirSync(RESULTS, { recursive: true })
  const file = join(RESULTS, `${o.scenario}.json`)
  const doc = {
    ...o.result,
    scenario: o.scenario,
    commit: commitId(),
    date: new Date().toISOString(),
    machine: { ...machine(), note: 'load generator, Kafka broker and gateway share these cores' },
    verdict: { pass: o.checks.every((c) => c.ok), checks: o.checks },
  }
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`)
  return file
}

export function printVerdict(o: Outcome, file: string): void {
  const r = o.result
  const line = (k: string) => (typeof r[k] === 'number' ? `${k}=${r[k]}` : '')
  process.stdout.write(
    `\n${o.scenario}: ${['events_per_s', 'p50_ms', 'p99_ms', 'p999_ms', 'non2xx', 'errors'].map(line).filter(Boolean).join(' ')}\n`,
  )
  for (const c of o.checks) process.stdout.write(`  ${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}\n`)
  process.stdout.write(
    `SLO verdict: ${o.checks.every((c) => c.ok) ? 'PASS' : 'FAIL'}  (written to ${file}; generator, broker and gateway share ${machine().cpus} cores)\n`,
  )
}
