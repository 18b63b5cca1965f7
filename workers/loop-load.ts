import { type EventLoopUtilization, performance } from 'node:perf_hooks'

/**
 * Whether this thread's event loop has been quiet lately: the share of the last `windowMs` it
 * spent busy (performance.eventLoopUtilization), re-sampled at most once per window, so asking
 * per request costs a clock read.
 */
export class LoopLoad {
  private sample: EventLoopUtilization = performance.eventLoopUtilization()
  private sampledAt = performance.now()
  private busy = false

  constructor(
    /** Busy share above which the loop is not quiet. */
    private readonly maxBusy: number,
    private readonly windowMs = 100,
  ) {}

  quiet(): boolean {
    const now = performance.now()
    if (now - this.sampledAt >= this.windowMs) {
      const sample = performance.eventLoopUtilization()
      this.busy = performance.eventLoopUtilization(sample, this.sample).utilization > this.maxBusy
      this.sample = sample
      this.sampledAt = now
    }
    return !this.busy
  }
}
