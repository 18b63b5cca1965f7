import type { OpenLoopResult } from '../bench/lib/open-loop.js'
import { metric, startGateway, stop, untilReadyz } from '../bench/lib/servers.js'
import { availability, type Check, fivexx, type Outcome } from './lib.js'

/** What every load-test scenario shares: its signature, the SLO checks, and the gateway it drives. */
export const SLO_P99_MS = Number(process.env.LOADTEST_P99_MS ?? 50)
const SLO_AVAILABILITY = 0.999

export type Scenario = (args: Args) => Promise<Outcome>
export interface Args {
  minutes?: number
  /** A running gateway's base URL; none: start one. */
  target?: string
}

/** The gateway under load: its base URL, and its RSS as its own /metrics reports it. */
export interface Gateway {
  url: string
  wsUrl: string
  /** Its process id when this run started it (not with --target). */
  pid?: number
  rssMb(): Promise<number>
}

export const availabilityCheck = (r: OpenLoopResult, min = SLO_AVAILABILITY): Check => ({
  name: `availability ≥ ${(min * 100).toFixed(1)}% (non-5xx, no connection errors)`,
  ok: availability(r) >= min,
  detail: `${(availability(r) * 100).toFixed(3)}% of ${r.requests.sent} requests (5xx ${fivexx(r)}, errors ${r.requests.errors}, timeouts ${r.requests.timeouts})`,
})
export const p99Check = (p99: number, limit = SLO_P99_MS, what = 'p99'): Check => ({
  name: `${what} ≤ ${limit} ms`,
  ok: p99 <= limit,
  detail: `${what} ${p99} ms`,
})

function gatewayAt(url: string, pid?: number): Gateway {
  const base = url.replace(/\/+$/, '')
  return {
    url: base,
    pid,
    wsUrl: `${base.replace(/^http/, 'ws')}/v1/stream`,
    rssMb: async () => (await metric(base, 'adgate_process_resident_memory_bytes', Number.NaN)) / 2 ** 20,
  }
}

/**
 * Polls `url`/readyz until it answers 200; resolves with how long that took (ms). A gateway says
 * ready only once it can take its rated load (decode threads and Kafka connections warmed), so a
 * scenario measures a ready gateway, as a load balancer would send it traffic.
 */
export function waitReady(url: string, timeoutMs = 120_000): Promise<number> {
  return untilReadyz(url, (status) => status === 200, timeoutMs)
}

/**
 * Runs `fn` against `target`, or against a gateway of its own started with `env`. Scenarios that
 * must configure the gateway (keys, limits, its broker) pass `ownOnly` and refuse a target. Either
 * way the load starts once /readyz says ready; the result tells how long that took
 * (`gateway_ready_ms`: from the spawn for its own gateway, else from the first poll).
 */
export async function withGateway(
  args: Args,
  env: Record<string, string>,
  fn: (gw: Gateway) => Promise<Outcome>,
  ownOnly = false,
): Promise<Outcome> {
  const ready = async (gw: Gateway, since: number) => {
    await waitReady(gw.url)
    const readyMs = Date.now() - since
    process.stdout.write(`gateway ${gw.url} ready after ${readyMs} ms\n`)
    const outcome = await fn(gw)
    return { ...outcome, result: { ...outcome.result, gateway_ready_ms: readyMs } }
  }
  if (args.target !== undefined) {
    if (ownOnly) throw new UsageError(OWN_ONLY)
    return ready(gatewayAt(args.target), Date.now())
  }
  const t0 = Date.now()
  const server = await startGateway(env)
  try {
    return await ready(gatewayAt(`http://127.0.0.1:${server.port}`, server.child.pid), t0)
  } finally {
    await stop(server)
  }
}

/** A scenario asked for something it cannot do (run.ts prints it and exits 2). */
export class UsageError extends Error {}
export const OWN_ONLY = 'this scenario configures its own gateway (keys, limits, its broker): drop --target'
