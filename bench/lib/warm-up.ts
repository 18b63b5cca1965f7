import { type OpenLoopRequest, openLoop } from './open-loop.js'

/**
 * V8 tiers a function up by its calls, not by time: at 150 requests/s of 100-event bodies the
 * gateway's CPU per request kept falling for about 50 s (10-s windows from its start: 1633, 1040,
 * 1047, 933, 860, 840 µs; load 10–12), so a warm-up of a few seconds left a run's first rounds
 * paying for the JIT. The warm-up is by requests, at the rate to be measured (faster, 500
 * requests/s at load 16, overran the gateway and the generator on this shared box), within
 * 10–40 s.
 */
export const WARM_UP_REQUESTS = 6000
const MIN_SECONDS = 10
const MAX_SECONDS = 40

/** Warms a server up for open-loop runs at `rate` requests/s. */
export async function warmUp(url: string, requests: OpenLoopRequest[], rate: number): Promise<void> {
  const seconds = Math.min(MAX_SECONDS, Math.max(MIN_SECONDS, WARM_UP_REQUESTS / rate))
  await openLoop({ url, requests, rate, seconds })
}
