// workers/loop-load.ts against this thread's real event loop.
import { describe, expect, it } from 'vitest'
import { LoopLoad } from '../../workers/loop-load.js'

const spin = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) {}
}
const idle = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('LoopLoad', () => {
  it('is not quiet after a window spent busy, and quiet again after one spent waiting', async () => {
    const load = new LoopLoad(0.5, 50)
    await idle(60)
    expect(load.quiet()).toBe(true)
    await idle(0) // a new loop iteration, so the busy time below is counted
    spin(120)
    expect(load.quiet()).toBe(false)
    expect(load.quiet()).toBe(false) // within the window: the last verdict, no new sample
    await idle(150)
    expect(load.quiet()).toBe(true)
  })
})
