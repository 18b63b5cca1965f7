import { describe, expect, it } from 'vitest'
import { addWaiting, expireWaiting, newExpiry } from '../../correlator/expiry.js'

const MIN = 60_000

describe('events waiting for a partner', () => {
  it('one list per key, scheduled once at its first event', () => {
    const expiry = newExpiry()
    const waiting = new Map<string, { t: number }[]>()
    addWaiting(expiry, waiting, 'a', { t: 10_000 }, 10_000)
    addWaiting(expiry, waiting, 'a', { t: 20_000 }, 20_000)
    expect(waiting.get('a')).toEqual([{ t: 10_000 }, { t: 20_000 }])
    expect([...expiry.slots.values()]).toEqual([['a']])
  })

  it('a list goes only when its newest event is below the bound; until then it is rescheduled at its newest', () => {
    const expiry = newExpiry()
    const waiting = new Map<string, { t: number }[]>()
    addWaiting(expiry, waiting, 'a', { t: 10_000 }, 10_000)
    waiting.get('a')!.push({ t: 2 * MIN + 10_000 })
    expect(expireWaiting(expiry, waiting, MIN, 't')).toBe(0)
    expect(waiting.has('a')).toBe(true)
    expect(expiry.order).toEqual([2])
    expect(expireWaiting(expiry, waiting, 3 * MIN, 't')).toBe(2)
    expect(waiting.size).toBe(0)
    expect(expiry.order).toEqual([])
  })

  it('a list already taken by its partner is not counted', () => {
    const expiry = newExpiry()
    const waiting = new Map<string, { t: number }[]>()
    addWaiting(expiry, waiting, 'b', { t: 0 }, 0)
    waiting.delete('b')
    expect(expireWaiting(expiry, waiting, MIN, 't')).toBe(0)
  })
})
