import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { openLoop, schedule, scheduleVerdict } from '../../bench/lib/open-loop.js'

/** A local server answering 200 at once, or holding every answer while a stall is on. */
function fakeServer(stall?: { afterRequests: number; ms: number }): Promise<{
  url: string
  server: http.Server
  received: () => number
}> {
  let n = 0
  let stallUntil = 0
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      n++
      if (stall && n === stall.afterRequests) stallUntil = performance.now() + stall.ms
      const wait = stallUntil - performance.now()
      if (wait > 0) setTimeout(() => res.end('ok'), wait)
      else res.end('ok')
    })
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        server,
        received: () => n,
      }),
    ),
  )
}

const request = { path: '/x', headers: { 'content-type': 'text/plain' }, body: Buffer.from('hello') }
let open: http.Server | undefined
afterEach(() => {
  open?.close()
  open = undefined
})

describe('open-loop schedule', () => {
  it('spaces constant-rate arrivals exactly 1/rate apart', () => {
    const t = schedule(200, 2, 'constant')
    expect(t.length).toBe(400)
    expect(t[1]! - t[0]!).toBeCloseTo(5)
    expect(t[399]).toBeCloseTo(1995)
  })

  it('draws Poisson arrivals with the asked-for mean rate, reproducibly from the seed', () => {
    const a = schedule(1000, 20, 'poisson', 7)
    expect(a.length).toBeGreaterThan(19_000) // mean 20000, sd ≈ 141
    expect(a.length).toBeLessThan(21_000)
    expect(Array.from(schedule(1000, 20, 'poisson', 7))).toEqual(Array.from(a))
    // Exponential gaps: their standard deviation equals their mean (1 ms).
    const gaps = Array.from(a.slice(1), (t, i) => t - a[i]!)
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length
    const sd = Math.sqrt(gaps.reduce((x, y) => x + (y - mean) ** 2, 0) / gaps.length)
    expect(sd / mean).toBeGreaterThan(0.9)
    expect(sd / mean).toBeLessThan(1.1)
  })

  it('flags a run that sent too few of its requests or dispatched them late', () => {
    expect(scheduleVerdict(1000, 1000, 1, 5).kept).toBe(true)
    expect(scheduleVerdict(1000, 900, 1, 5)).toMatchObject({ kept: false })
    expect(scheduleVerdict(1000, 1000, 12, 5).why).toMatch(/fell behind/)
  })
})

describe('open-loop generator against a local server', () => {
  it('sends every scheduled request, and answers count as 2xx', async () => {
    const s = await fakeServer()
    open = s.server
    const r = await openLoop({ url: s.url, requests: [request], rate: 200, seconds: 1 })
    expect(r.requests.due).toBe(200)
    expect(r.requests.sent).toBe(200)
    expect(r.requests['2xx']).toBe(200)
    expect(s.received()).toBe(200)
    expect(r.latency_ms.p50).toBeGreaterThan(0)
  })

  it('counts requests never answered as timeouts and still finishes', async () => {
    const server = http.createServer(() => {}) // reads nothing, answers nothing
    open = server
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const r = await openLoop({
      url,
      requests: [request],
      rate: 50,
      seconds: 0.2,
      maxConnections: 2,
      timeoutMs: 300,
    })
    expect(r.requests.sent).toBe(10)
    expect(r.requests.answered).toBe(0)
    expect(r.requests.timeouts).toBe(10)
    expect(r.requests.errors).toBe(10)
    server.closeAllConnections()
  })

  it('flags the run when its own event loop is blocked and it falls behind the schedule', async () => {
    const s = await fakeServer()
    open = s.server
    let blocked = false
    const r = await openLoop({
      url: s.url,
      requests: [request],
      rate: 200,
      seconds: 1,
      onResponse: () => {
        if (blocked) return
        blocked = true
        const until = performance.now() + 300
        while (performance.now() < until) {} // a generator too busy to send on time
      },
    })
    expect(r.schedule.kept).toBe(false)
    expect(r.schedule.lag_ms.max).toBeGreaterThanOrEqual(250)
    expect(r.requests.sent).toBe(200)
  })

  it('corrects coordinated omission: a 400 ms stall on one connection delays every request due during it', async () => {
    // One connection, like a closed-loop client: during the stall the generator cannot send, so a
    // tool timing from the actual send would see one slow request. Requests were due every 5 ms
    // during the stall; measured from their intended times, the ones due in its first half waited
    // at least 200 ms each.
    const s = await fakeServer({ afterRequests: 60, ms: 400 })
    open = s.server
    const latencies: number[] = []
    const r = await openLoop({
      url: s.url,
      requests: [request],
      rate: 200,
      seconds: 2,
      maxConnections: 1,
      onResponse: (_intended, ms) => latencies.push(ms),
    })
    expect(r.requests['2xx']).toBe(400)
    const waitedHalfTheStall = latencies.filter((ms) => ms >= 200).length
    expect(waitedHalfTheStall).toBeGreaterThanOrEqual(38) // 200 ms × 200/s = 40 due in the first half
    expect(r.latency_ms.max).toBeGreaterThanOrEqual(390)
    expect(r.latency_ms.p90).toBeGreaterThanOrEqual(100)
    // What the server itself took per request: only the one request held during the stall was slow.
    expect(r.service_ms.p90).toBeLessThan(r.latency_ms.p90)
  })
})
