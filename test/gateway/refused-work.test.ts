// gateway/refused-work.ts: refused decode time is charged to its client and drains at the
// configured rate; beyond one second's worth the client's next bodies wait, others never do.
import { describe, expect, it, vi } from 'vitest'
import { RefusedWork, WORST_MS_PER_BYTE } from '../../gateway/refused-work.js'

function clock() {
  const c = { t: 1_000_000, now: () => c.t }
  return c
}

describe('RefusedWork', () => {
  it('one second of refused work is free; beyond it the client waits until back under', () => {
    const c = clock()
    const w = new RefusedWork(50, 4, c.now)
    w.charge('noisy', 50)
    expect(w.waitMs('noisy')).toBe(0)
    w.charge('noisy', 100) // 150 ms owed: 100 over, drained at 50 ms/s
    expect(w.waitMs('noisy')).toBe(2000)
    c.t += 1000
    expect(w.waitMs('noisy')).toBe(1000)
    c.t += 1000
    expect(w.waitMs('noisy')).toBe(0)
  })

  it('charges one client only', () => {
    const w = new RefusedWork(50, 4, clock().now)
    w.charge('noisy', 10_000)
    expect(w.waitMs('noisy')).toBeGreaterThan(0)
    expect(w.waitMs('valid')).toBe(0)
    w.charge('valid', 0)
    expect(w.waitMs('valid')).toBe(0)
  })

  // Waiting is timers: fake ones (Date included), so no machine load decides these.
  it('at most maxWaiting bodies of a client wait; the next is refused with its wait', async () => {
    vi.useFakeTimers()
    try {
      const w = new RefusedWork(1000, 2)
      w.charge('noisy', 1030) // 30 ms over
      const turns = Promise.all([w.turn('noisy'), w.turn('noisy')])
      expect(w.mayWait('noisy')).toBe(false)
      expect(await w.turn('noisy')).toEqual({ go: false, retryAfterMs: 30 })
      expect(await w.turn('valid')).toEqual({ go: true, waited: false })
      await vi.advanceTimersByTimeAsync(30)
      expect(await turns).toEqual([
        { go: true, waited: true },
        { go: true, waited: true },
      ])
      expect(w.mayWait('noisy')).toBe(true)
    } finally {
      vi.useRealTimers()
    }
  })

  it('a waiting body looks at the debt again on waking: work charged meanwhile makes it wait on', async () => {
    vi.useFakeTimers()
    try {
      const w = new RefusedWork(1000, 4)
      w.charge('noisy', 1020) // 20 ms over
      let done = false
      const turn = w.turn('noisy').then((t) => {
        done = true
        return t
      })
      await vi.advanceTimersByTimeAsync(5)
      w.charge('noisy', 60) // another body of it was refused meanwhile: 75 ms over
      await vi.advanceTimersByTimeAsync(70)
      expect(done).toBe(false)
      await vi.advanceTimersByTimeAsync(5)
      expect(done).toBe(true)
      expect(await turn).toEqual({ go: true, waited: true })
    } finally {
      vi.useRealTimers()
    }
  })

  it('a client that went over its free share is on probation for probationMs after it last was; one under it never is', () => {
    const c = clock()
    const w = new RefusedWork(50, 4, c.now, 30_000)
    w.charge('careless', 50) // one second's worth: free, no probation
    expect(w.onProbation('careless')).toBe(false)
    w.charge('noisy', 60)
    expect(w.onProbation('noisy')).toBe(true)
    expect(w.onProbation('valid')).toBe(false)
    c.t += 20_000 // paid up long ago, still on probation
    expect(w.waitMs('noisy')).toBe(0)
    expect(w.onProbation('noisy')).toBe(true)
    w.charge('noisy', 100) // over again: probation starts anew
    c.t += 29_999
    expect(w.onProbation('noisy')).toBe(true)
    c.t += 1
    expect(w.onProbation('noisy')).toBe(false)
  })

  it('forgets no client on probation, however many it tracks', () => {
    const c = clock()
    const w = new RefusedWork(50, 4, c.now, 30_000)
    w.charge('noisy', 60)
    c.t += 2000
    for (let i = 0; i < 10_000; i++) w.charge(`client-${i}`, 1)
    c.t += 1000 // everyone paid up
    w.charge('one-more', 1)
    expect(w.size).toBe(2) // noisy, on probation, is kept
    expect(w.onProbation('noisy')).toBe(true)
    c.t += 30_000
    expect(w.onProbation('noisy')).toBe(false)
  })

  it('forgets clients that owe nothing once it tracks many', () => {
    const c = clock()
    const w = new RefusedWork(50, 4, c.now)
    for (let i = 0; i < 10_000; i++) w.charge(`client-${i}`, 1)
    c.t += 1000
    w.charge('one-more', 1)
    expect(w.size).toBe(1)
  })
})

describe('RefusedWork: charged at admission', () => {
  it('a new client is estimated at the worst cost per byte until a body of it says otherwise', () => {
    const w = new RefusedWork(50, 4, clock().now)
    const first = w.admit('new', 10_000)
    expect(first).toEqual({ apart: false, estimateMs: 10_000 * WORST_MS_PER_BYTE })
    // 30 ms in flight: with its own 30 ms the next is over the 50 ms share, so it is apart.
    expect(w.admit('new', 10_000).apart).toBe(true)
    expect(w.admit('other', 10_000).apart).toBe(false) // estimates are per client
    expect(w.admit('big', 20_000).apart).toBe(true) // 60 ms alone is over the share
  })

  it('a client back from probation, its debt paid, decodes a body estimated over its share apart (its own estimate counts)', () => {
    const c = clock()
    const w = new RefusedWork(50, 4, c.now, 30_000)
    w.settle('noisy', w.admit('noisy', 100), 100, 0) // valid at first: estimated at nothing
    const csv = w.admit('noisy', 600_000)
    expect(csv.apart).toBe(false)
    w.settle('noisy', csv, 600_000, 500) // then its 500 ms CSV
    expect(w.onProbation('noisy')).toBe(true)
    c.t += 60_000 // quiet for a minute: paid up, probation over
    expect(w.waitMs('noisy')).toBe(0)
    expect(w.onProbation('noisy')).toBe(false)
    // Without its own estimate this CSV went to the shared workers, nothing else being in flight.
    const again = w.admit('noisy', 600_000)
    expect(again.apart).toBe(true)
    expect(again.estimateMs).toBeCloseTo(500)
    expect(w.admit('noisy', 10).apart).toBe(true) // with the CSV in flight, over
  })

  it('the estimate is the costliest refused time per byte since the last valid body, not the last body only', () => {
    const w = new RefusedWork(50, 4, clock().now)
    const admitted = () => w.admit('noisy', 1000)
    w.settle('noisy', admitted(), 1000, 1000) // 1 ms per byte
    w.settle('noisy', admitted(), 1000, 1) // a cheap refusal: still 1 ms per byte
    expect(w.admit('noisy', 2).estimateMs).toBe(2)
    w.settle('noisy', admitted(), 1000, 0) // a valid body: nothing reserved from now on
    expect(w.admit('noisy', 1_000_000).estimateMs).toBe(0)
  })

  it('settling releases the estimate; a client whose last body was valid reserves nothing and is never charged', () => {
    const w = new RefusedWork(50, 4, clock().now)
    const burst = [w.admit('valid', 10_000), w.admit('valid', 10_000)] // 30 ms each, estimated
    expect(burst.map((a) => a.apart)).toEqual([false, true])
    for (const a of burst) w.settle('valid', a, 10_000, 0)
    expect(w.waitMs('valid')).toBe(0)
    expect(w.onProbation('valid')).toBe(false)
    // Its last body was valid: it reserves nothing, however many large bodies it has in flight.
    for (let i = 0; i < 1000; i++) expect(w.admit('valid', 1_000_000).apart).toBe(false)
  })

  it('a failed decode releases its estimate and teaches nothing; refused work is charged as before and estimated next', () => {
    const w = new RefusedWork(50, 4, clock().now)
    const a = w.admit('noisy', 10_000) // 30 ms
    const b = w.admit('noisy', 10_000)
    expect(b.apart).toBe(true)
    w.settle('noisy', a, 20_000, null)
    w.settle('noisy', b, 20_000, null)
    const c = w.admit('noisy', 1)
    expect(c.apart).toBe(false)
    w.settle('noisy', c, 1, 80)
    expect(w.onProbation('noisy')).toBe(true)
    expect(w.waitMs('noisy')).toBeGreaterThan(0)
    // Its next body is estimated at the refused time per byte of that one.
    expect(w.admit('noisy', 2).estimateMs).toBe(160)
  })
})

describe('RefusedWork: what it tracks stays bounded', () => {
  it('forgets clients whose bodies were all settled valid, once it tracks many', () => {
    const c = clock()
    const w = new RefusedWork(50, 4, c.now)
    for (let i = 0; i < 10_000; i++) {
      const client = `client-${i}`
      // Estimates that do not add up exactly in floating point, settled in another order.
      const sizes = [1_234, 3_331, 7_777]
      const admitted = sizes.map((n) => w.admit(client, n))
      for (const k of [2, 0, 1]) w.settle(client, admitted[k]!, sizes[k]!, 0)
    }
    w.admit('one-more', 1)
    expect(w.size).toBe(1)
  })
})
