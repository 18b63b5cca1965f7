import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import autocannon from 'autocannon'
import type { Kind } from '../bench/lib/mix.js'
import { commitId, machine, REPO_ROOT } from '../bench/lib/results.js'
import { bodies } from '../bench/lib/servers.js'
import { percentile } from '../bench/lib/stats.js'
import { EVENT_INFO } from '../events/catalog.js'
import { CONTENT_TYPE } from '../generator/encode.js'

export const RESULTS = join(REPO_ROOT, 'loadtest', 'results')

/** autocannon request list interleaving the kinds by weight, bodies from the generator. */
export function mixedRequests(
  mix: Kind[],
  headers: Record<string, string> = {},
): { requests: autocannon.Request[]; eventsPerRequest: number } {
  const total = mix.reduce((a, k) => a + k.weight, 0)
  const pools = mix.map((k) => bodies(k.type, k.encoding, k.weight * 4, k.eventsPerRequest))
  const used = mix.map(() => 0)
  const requests: autocannon.Request[] = []
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
      method: 'POST',
      path: `/v1/${EVENT_INFO[k.type].route}`,
      headers: { 'content-type': CONTENT_TYPE[k.encoding], ...headers },
      body: pools[best]![used[best]!++ % pools[best]!.length],
    })
    events += k.eventsPerRequest
  }
  return { requests, eventsPerRequest: events / requests.length }
}

/** Response times bucketed by second since `t0`, from autocannon's 'response' events. */
export class Timeline {
  readonly t0 = Date.now()
  readonly buckets = new Map<number, { ms: number[]; fail: number; n: number }>()
  track(instance: autocannon.Instance): void {
    instance.on('response', (_client, status: number, _bytes: number, ms: number) => this.add(status, ms))
    instance.on('reqError', () => this.add(0, 0))
  }
  add(status: number, ms: number): void {
    const s = Math.floor((Date.now() - this.t0) / 1000)
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
        p50_ms: percentile(ms, 0.5),
        p99_ms: percentile(ms, 0.99),
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

export function startCannon(opts: autocannon.Options): {
  instance: autocannon.Instance
  done: Promise<autocannon.Result>
} {
  let instance!: autocannon.Instance
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)))
  })
  return { instance, done }
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

/** Availability: share of requests answered with anything but a 5xx or a connection error. */
export function availability(r: autocannon.Result): number {
  const total = r.requests.total + r.errors
  if (total === 0) return 0
  return (total - r['5xx'] - r.errors) / total
}

export function rateCheck(requested: number, achieved: number): Check {
  const ratio = achieved / requested
  return {
    name: 'generator kept the offered rate',
    ok: ratio >= 0.95,
    detail: `achieved ${achieved.toFixed(0)} of ${requested.toFixed(0)} req/s requested (${(ratio * 100).toFixed(1)}%)`,
  }
}

export function generatorCheck(share: number): Check {
  return {
    name: 'generator CPU below saturation',
    ok: share < 0.9,
    detail: `load generator used ${(share * 100).toFixed(0)}% of one core (autocannon runs on one thread)`,
  }
}

/** The contract fields, computed from an autocannon result. */
export function contractFields(
  scenario: string,
  r: autocannon.Result,
  eventsPerRequest: number,
  seconds: number,
): Record<string, unknown> {
  return {
    ...r,
    scenario,
    events_per_s: Math.round((r['2xx'] / seconds) * eventsPerRequest),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    p999_ms: r.latency.p99_9 ?? r.latency.p99,
    errors: r.errors,
    non2xx: r.non2xx,
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
