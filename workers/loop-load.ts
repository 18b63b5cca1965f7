import { nativeAddon } from '../decoders/native-addon.js'

/**
 * This thread's CPU time in ms; without the native addon, the whole process's (its worker threads
 * too: it over-counts, so lone bodies go to the workers sooner, never later).
 */
const cpuClock: () => number =
  nativeAddon().addon?.threadCpuMs ??
  (() => {
    const { user, system } = process.cpuUsage()
    return (user + system) / 1000
  })

/**
 * Whether this thread has been quiet lately: the share of a core it used over the last `windowMs`
 * (its CPU time over wall time), re-sampled at most once per window, so asking per request costs a
 * clock read. CPU time, not the event loop's busy share (performance.eventLoopUtilization): on a
 * shared machine a loop also counts as busy while it waits for a core, and at 42 requests/s on a
 * box at load 16 it read 0.25–0.6 where the thread used under 0.1 of a core, so lone bodies went
 * through the workers and paid two thread wake-ups each.
 */
export class LoopLoad {
  private sampledAt = performance.now()
  private cpuAt: number
  private busy = false

  constructor(
    /** Share of a core above which the thread is not quiet. */
    private readonly maxBusy: number,
    private readonly windowMs = 100,
    /** This thread's CPU time in ms (tests pass a fake). */
    private readonly cpuMs: () => number = cpuClock,
  ) {
    this.cpuAt = cpuMs()
  }

  quiet(): boolean {
    const now = performance.now()
    if (now - this.sampledAt >= this.windowMs) {
      const cpu = this.cpuMs()
      this.busy = cpu - this.cpuAt > this.maxBusy * (now - this.sampledAt)
      this.cpuAt = cpu
      this.sampledAt = now
    }
    return !this.busy
  }
}
