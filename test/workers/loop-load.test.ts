// workers/loop-load.ts with a fake CPU clock (a real one would make the verdict depend on how
// loaded the machine is), on real wall-clock windows.
import { describe, expect, it } from 'vitest'
import { LoopLoad } from '../../workers/loop-load.js'

const spin = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) {}
}
const idle = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('LoopLoad', () => {
  it('is not quiet after a window in which the thread used most of a core, and quiet again after one spent waiting', async () => {
    let cpu = 0
    const load = new LoopLoad(0.5, 50, () => cpu)
    await idle(60)
    cpu += 1
    expect(load.quiet()).toBe(true)
    await idle(60)
    cpu += 1000 // far over half of any window this test's timers can take
    expect(load.quiet()).toBe(false)
    expect(load.quiet()).toBe(false) // within the window: the last verdict, no new sample
    await idle(60)
    expect(load.quiet()).toBe(true)
  })

  // Regression: judged by the event loop's busy share (performance.eventLoopUtilization), a loop
  // waiting for a core on a loaded machine (load 16 on 2 cores) read 0.25–0.6 busy while its
  // thread used under 0.1 of a core, so lone bodies went to the workers at 42 requests/s.
  it('counts the CPU the thread used, not the wall time it was busy or waited for a core', () => {
    let cpu = 0
    const load = new LoopLoad(0.5, 50, () => cpu)
    spin(60) // a busy loop in wall time, while the (fake) clock says the thread got 5 ms of CPU
    cpu += 5
    expect(load.quiet()).toBe(true)
  })
})
