// workers/watchdog.ts: the decode tasks' deadlines on one timer, with a fake clock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Watchdog } from '../../workers/watchdog.js'

describe('Watchdog', () => {
  let now = 0
  const clock = () => now
  const advance = (ms: number) => {
    now += ms
    vi.advanceTimersByTime(ms)
  }
  beforeEach(() => {
    now = 0
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('expires each unfinished task at its own deadline, in order, on one timer', () => {
    const w = new Watchdog(100, clock)
    const fired: string[] = []
    const a = w.start()
    a.once('abort', () => fired.push('a'))
    advance(40)
    const b = w.start()
    b.once('abort', () => fired.push('b'))
    expect(vi.getTimerCount()).toBe(1)
    advance(59)
    expect(fired).toEqual([])
    advance(1)
    expect(fired).toEqual(['a'])
    expect([a.aborted, b.aborted]).toEqual([true, false])
    advance(40)
    expect(fired).toEqual(['a', 'b'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('never expires a finished task, whichever order tasks finish in', () => {
    const w = new Watchdog(100, clock)
    const fired: string[] = []
    const a = w.start()
    a.once('abort', () => fired.push('a'))
    const b = w.start()
    b.once('abort', () => fired.push('b'))
    const c = w.start()
    c.once('abort', () => fired.push('c'))
    w.finish(b) // out of order: a is still running
    advance(50)
    w.finish(a)
    advance(100)
    expect(fired).toEqual(['c'])
    expect([a.aborted, b.aborted, c.aborted]).toEqual([false, false, true])
  })

  it('forgets a listener taken off (piscina does so when the task is done)', () => {
    const w = new Watchdog(10, clock)
    const d = w.start()
    const listener = vi.fn()
    d.once('abort', listener)
    d.removeListener('abort', listener)
    advance(10)
    expect(d.aborted).toBe(true)
    expect(listener).not.toHaveBeenCalled()
  })

  it('stops its timer', () => {
    const w = new Watchdog(10, clock)
    w.start()
    w.stop()
    expect(vi.getTimerCount()).toBe(0)
  })
})
