import http from 'node:http'
import * as hdr from 'hdr-histogram-js'

/**
 * An open-loop HTTP load generator that tells the truth about latency.
 *
 * Arrivals are scheduled in advance (constant rate, or Poisson with a seeded generator) and sent
 * when due whether or not earlier requests were answered. Latency is measured from each request's
 * INTENDED send time, so a server stall shows up as every request that should have been sent
 * during it waiting, not as one slow sample (coordinated omission, Gil Tene). Values go into an
 * HdrHistogram in microseconds.
 *
 * The generator also checks itself: it records how late its own event loop dispatched each
 * request against the schedule (dispatch lag) and how many it sent against how many were due. A
 * run whose lag grew past `maxLagMs` or that sent fewer than 99 % of its requests on time did
 * not keep its schedule and is flagged (`schedule.kept: false`); its latencies still count every
 * wait from the intended time, but the offered load was not what was asked for.
 *
 * Why not autocannon's rate mode: it releases each connection's per-second quota back to back on
 * a setInterval(1000) and then pauses, so "open-loop" runs are bursts, and it times each request
 * from its actual write, which hides coordinated omission. autocannon stays for closed-loop
 * saturation runs, where throughput, not latency, is the figure.
 */
export interface OpenLoopRequest {
  path: string
  headers: Record<string, string>
  body: Buffer
}

export interface OpenLoopOptions {
  /** Base URL, e.g. http://127.0.0.1:8080. */
  url: string
  /** Requests to send, used round robin. */
  requests: OpenLoopRequest[]
  /** Requests per second. */
  rate: number
  seconds: number
  arrivals?: 'constant' | 'poisson'
  /** Seed for Poisson arrivals. */
  seed?: number
  /** Keep-alive connections at most; a request due when all are busy waits (and that wait counts). */
  maxConnections?: number
  timeoutMs?: number
  /** Dispatch lag (p99) above which the run is flagged as not having kept its schedule. */
  maxLagMs?: number
  /** Called per answer: intended send time since the start, latency from it, status (0 = error). */
  onResponse?: (intendedMs: number, latencyMs: number, status: number) => void
}

export interface Percentiles {
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
}

export interface OpenLoopResult {
  tool: string
  arrivals: 'constant' | 'poisson'
  duration_s: number
  intended_rate: number
  /** Requests sent per second of the schedule window. */
  achieved_rate: number
  requests: {
    due: number
    sent: number
    answered: number
    '2xx': number
    non2xx: number
    errors: number
    /** Not answered within timeoutMs of the connection going quiet, or still unanswered timeoutMs after the last was due. */
    timeouts: number
    status_codes: Record<string, number>
  }
  /** From each request's intended send time to its last response byte (coordinated omission corrected). */
  latency_ms: Percentiles
  /** From the request's write to a connection to the last response byte: what a closed-loop tool reports. */
  service_ms: Percentiles
  schedule: {
    kept: boolean
    /** How late the generator's own loop dispatched requests against the schedule. */
    lag_ms: Percentiles
    sent_share: number
    why?: string
  }
  connections: number
  /** Share of one core the generator process used over the run. */
  generator_cpu_share: number
}

const US = 1000

function histogram(): hdr.Histogram {
  // 1 µs .. 10 min, 3 significant digits.
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  })
}

function percentiles(h: hdr.Histogram): Percentiles {
  const ms = (us: number) => Math.round((us / US) * 1000) / 1000
  if (h.totalCount === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN }
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  }
}

/** Intended send times (ms from the start) of every request in the run. */
export function schedule(
  rate: number,
  seconds: number,
  arrivals: 'constant' | 'poisson',
  seed = 1,
): Float64Array {
  const end = seconds * 1000
  if (arrivals === 'constant') {
    const n = Math.floor(rate * seconds)
    return Float64Array.from({ length: n }, (_, i) => (i * 1000) / rate)
  }
  // Poisson process: exponential gaps with mean 1/rate, from a seeded mulberry32.
  let s = seed >>> 0
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const times: number[] = []
  for (let t = 0; ; ) {
    t += (-Math.log(1 - random()) * 1000) / rate
    if (t >= end) break
    times.push(t)
  }
  return Float64Array.from(times)
}

/** Whether a run kept its schedule: nearly every due request sent, and the loop never far behind. */
export function scheduleVerdict(
  due: number,
  sentOnTime: number,
  lagP99Ms: number,
  maxLagMs: number,
): { kept: boolean; why?: string } {
  const share = due === 0 ? 1 : sentOnTime / due
  if (share < 0.99)
    return { kept: false, why: `sent ${(share * 100).toFixed(1)}% of the due requests within the run` }
  if (lagP99Ms > maxLagMs)
    return { kept: false, why: `dispatch lag p99 ${lagP99Ms} ms > ${maxLagMs} ms: the generator fell behind` }
  return { kept: true }
}

export function openLoop(o: OpenLoopOptions): Promise<OpenLoopResult> {
  const arrivals = o.arrivals ?? 'constant'
  const times = schedule(o.rate, o.seconds, arrivals, o.seed)
  const timeoutMs = o.timeoutMs ?? 10_000
  const maxLagMs = o.maxLagMs ?? 5
  const base = new URL(o.url)
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.maxConnections ?? 256, scheduling: 'fifo' })
  const latency = histogram()
  const service = histogram()
  const lag = histogram()
  const codes: Record<string, number> = {}
  let sent = 0
  let sentOnTime = 0
  let answered = 0
  let ok = 0
  let errors = 0
  let timeouts = 0
  let inFlight = 0
  let next = 0
  const cpu0 = process.cpuUsage()
  const wall0 = performance.now()
  const t0 = wall0 + 20 // a short lead so the first requests are not late by the set-up itself
  const endMs = o.seconds * 1000

  return new Promise((resolve) => {
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      // Whatever is still unanswered (waiting for a connection or for the server) is a timeout.
      const unanswered = inFlight
      errors += unanswered
      timeouts += unanswered
      agent.destroy()
      const cpu = process.cpuUsage(cpu0)
      const lagP = percentiles(lag)
      const verdict = scheduleVerdict(times.length, sentOnTime, lagP.p99, maxLagMs)
      resolve({
        tool: 'adgate open-loop generator (node:http keep-alive, HdrHistogram; latency from the intended send time)',
        arrivals,
        duration_s: o.seconds,
        intended_rate: o.rate,
        achieved_rate: Math.round((sentOnTime / o.seconds) * 100) / 100,
        requests: {
          due: times.length,
          sent,
          answered,
          '2xx': ok,
          non2xx: answered - ok,
          errors,
          timeouts,
          status_codes: codes,
        },
        latency_ms: percentiles(latency),
        service_ms: percentiles(service),
        schedule: { ...verdict, lag_ms: lagP, sent_share: times.length ? sentOnTime / times.length : 1 },
        connections: o.maxConnections ?? 256,
        generator_cpu_share:
          Math.round(((cpu.user + cpu.system) / 1000 / (performance.now() - wall0)) * 1000) / 1000,
      })
    }

    const send = (i: number, now: number) => {
      const intended = times[i]!
      const spec = o.requests[i % o.requests.length]!
      const lagUs = Math.max(1, Math.round((now - t0 - intended) * US))
      lag.recordValue(lagUs)
      sent++
      if (now - t0 <= endMs + maxLagMs) sentOnTime++
      inFlight++
      let written = now // until the request is flushed to a connection (it may wait for one)
      let settled = false
      const done = (status: number, timedOut = false) => {
        if (settled || finished) return
        settled = true
        const end = performance.now()
        inFlight--
        if (status === 0) {
          errors++
          if (timedOut) timeouts++
        } else {
          answered++
          if (status >= 200 && status < 300) ok++
          codes[status] = (codes[status] ?? 0) + 1
          latency.recordValue(Math.max(1, Math.round((end - t0 - intended) * US)))
          service.recordValue(Math.max(1, Math.round((end - written) * US)))
        }
        o.onResponse?.(intended, end - t0 - intended, status)
        if (next >= times.length && inFlight === 0) finish()
      }
      const req = http.request(
        {
          agent,
          host: base.hostname,
          port: base.port,
          method: 'POST',
          path: spec.path,
          headers: { ...spec.headers, 'content-length': String(spec.body.length) },
        },
        (res) => {
          res.on('data', noop)
          res.on('end', () => done(res.statusCode ?? 0))
          res.on('error', () => done(0))
        },
      )
      req.setTimeout(timeoutMs, () => {
        req.destroy()
        done(0, true)
      })
      req.on('finish', () => {
        written = performance.now()
      })
      req.on('error', () => done(0))
      req.end(spec.body)
    }

    const tick = () => {
      const now = performance.now()
      while (next < times.length && times[next]! <= now - t0) send(next++, now)
      if (next < times.length) {
        // Sleep until the next arrival; timers fire ≥ 1 ms late at worst, which the lag records.
        setTimeout(tick, Math.max(0, times[next]! - (performance.now() - t0) - 0.5))
      } else if (inFlight === 0) finish()
      else setTimeout(finish, timeoutMs) // the last requests get timeoutMs to answer, then count as timeouts
    }
    setTimeout(tick, t0 - performance.now())
  })
}

function noop(): void {}
