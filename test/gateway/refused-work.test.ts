// gateway/refused-work.ts: refused decode time is charged to its client and drains at the
// configured rate; beyond one second's worth the client's next bodies wait, others never do.
import { describe, expect, it } from 'vitest'
import { RefusedWork } from '../../gateway/refused-work.js'

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

  it('at most maxWaiting bodies of a client wait; the next may not', async () => {
    const w = new RefusedWork(1000, 2)
    w.charge('noisy', 5000)
    const waits = [w.wait('noisy', 30), w.wait('noisy', 30)]
    expect(w.mayWait('noisy')).toBe(false)
    expect(w.mayWait('valid')).toBe(true)
    await Promise.all(waits)
    expect(w.mayWait('noisy')).toBe(true)
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
