// A load recorder for fault scenarios: a few clients post small batches of generated events
// (every event id unique and prefixed by the run) in a loop, rotating through the four event
// types in their primary encodings, and every exchange is recorded with its event ids and its
// outcome. The target can be changed (or paused with null) while the load runs, so a gateway can
// be killed and restarted under it. Every request is bounded: no answer within requestTimeoutMs
// is recorded as a hang.
import type { Encoding } from '../../../decoders/result.js'
import { EVENT_INFO, type EventType } from '../../../events/catalog.js'
import { CONTENT_TYPE, encodeEvents } from '../../../generator/encode.js'
import { generateEvents } from '../../../generator/funnel.js'

export interface Exchange {
  readonly client: number
  readonly type: EventType
  readonly ids: string[]
  /** which target (gateway generation) it was sent to */
  readonly target: number
  readonly sentAt: number
  answeredAt: number
  status: number | null
  retryAfter: string | null
  body: Record<string, unknown> | null
  /** a request that got no HTTP answer: `<name>: <message> (<cause code>)`; TimeoutError = a hang */
  error: string | null
}

export interface LoadOptions {
  /** prefix of every event id and request id of this load */
  readonly run: string
  readonly clients?: number
  readonly eventsPerRequest?: number
  /** pause of each client after an answer (after an error or a 5xx: at least 100 ms; after a
   * Retry-After: that long, as a well-behaved client does, at most 5 s) */
  readonly pauseMs?: number
  /** no new request once this many events were sent (the load bound) */
  readonly maxEvents?: number
  readonly types?: readonly EventType[]
  /** an answer later than this is a hang */
  readonly requestTimeoutMs?: number
}

/** The primary encoding of each type (README): Avro bids, JSON impressions, CSV clicks and conversions. */
export const PRIMARY: Readonly<Record<EventType, Encoding>> = {
  bid: 'avro',
  impression: 'json',
  click: 'csv',
  conversion: 'csv',
}

const ALL_TYPES: readonly EventType[] = ['bid', 'impression', 'click', 'conversion']

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export class Load {
  readonly exchanges: Exchange[] = []
  private targetUrl: string | null
  private generation = 0
  private on = false
  private running: Promise<void>[] = []
  private seq = 0
  private sent = 0
  readonly options: Required<LoadOptions>
  /** pause after a good answer; may be changed while the load runs (slower before an outage) */
  pauseMs: number

  constructor(target: string | null, options: LoadOptions) {
    this.targetUrl = target
    this.options = {
      clients: 2,
      eventsPerRequest: 10,
      pauseMs: 50,
      maxEvents: 10_000,
      types: ALL_TYPES,
      requestTimeoutMs: 20_000,
      ...options,
    }
    this.pauseMs = this.options.pauseMs
  }

  /** Base URL the clients post to; null pauses them (a gateway being restarted). */
  set target(url: string | null) {
    this.targetUrl = url
    this.generation++
  }

  get target(): string | null {
    return this.targetUrl
  }

  get eventsSent(): number {
    return this.sent
  }

  start(): void {
    this.on = true
    this.running = Array.from({ length: this.options.clients }, (_, n) => this.client(n))
  }

  /** Stop sending; resolves once every request in flight has its outcome. */
  async stop(): Promise<void> {
    this.on = false
    await Promise.all(this.running)
  }

  private async client(n: number): Promise<void> {
    const { run, eventsPerRequest, types, maxEvents, requestTimeoutMs } = this.options
    let k = 0
    while (this.on) {
      const url = this.targetUrl
      if (url === null || this.sent + eventsPerRequest > maxEvents) {
        await sleep(50)
        continue
      }
      const type = types[(n + k++) % types.length]!
      const events = generateEvents(type, eventsPerRequest, (n + 1) * 1_000_003 + this.seq)
      const first = this.seq
      for (const e of events) e.event_id = `${run}-${this.seq++}`
      this.sent += events.length
      const ex: Exchange = {
        client: n,
        type,
        ids: events.map((e) => e.event_id as string),
        target: this.generation,
        sentAt: Date.now(),
        answeredAt: 0,
        status: null,
        retryAfter: null,
        body: null,
        error: null,
      }
      this.exchanges.push(ex)
      try {
        const res = await fetch(`${url}/v1/${EVENT_INFO[type].route}`, {
          method: 'POST',
          body: encodeEvents(type, events, PRIMARY[type]),
          headers: { 'content-type': CONTENT_TYPE[PRIMARY[type]], 'x-request-id': `${run}-r${first}` },
          signal: AbortSignal.timeout(requestTimeoutMs),
        })
        const text = await res.text()
        ex.status = res.status
        ex.retryAfter = res.headers.get('retry-after')
        try {
          ex.body = JSON.parse(text)
        } catch {
          ex.body = { raw: text }
        }
      } catch (err) {
        const e = err as Error & { cause?: { code?: string } }
        ex.error = `${e.name}: ${e.message}${e.cause?.code ? ` (${e.cause.code})` : ''}`
      }
      ex.answeredAt = Date.now()
      const retryAfterMs = Math.min(Number(ex.retryAfter ?? 0) * 1000 || 0, 5000)
      const pauseMs = this.pauseMs
      await sleep(ex.status !== null && ex.status < 500 ? pauseMs : Math.max(pauseMs, 100, retryAfterMs))
    }
  }

  /** Event ids the gateway acknowledged: all of a 200, all but the listed rejects of a 207. */
  ackedIds(): string[] {
    return this.exchanges.flatMap(ackedOf)
  }

  acked(): Exchange[] {
    return this.exchanges.filter((e) => e.status === 200 || e.status === 207)
  }

  /** Waits until `n` requests sent after `sentAfter` (ms since the epoch; 0: any) were acknowledged. */
  waitAcked(
    what: string,
    n: number,
    sentAfter: number,
    timeoutMs: number,
    detail?: () => string,
  ): Promise<void> {
    const enough = () => this.acked().filter((e) => e.sentAt > sentAfter).length >= n
    return waitFor(what, enough, timeoutMs, detail)
  }

  /** True when some answered exchange matches. */
  answered(pred: (e: Exchange) => boolean): boolean {
    return this.exchanges.some((e) => e.answeredAt > 0 && pred(e))
  }

  /** Outcome counts (status, error code, or the connection error) of the exchanges matching. */
  outcomes(pred: (e: Exchange) => boolean = () => true): Record<string, number> {
    const out: Record<string, number> = {}
    for (const e of this.exchanges.filter(pred)) {
      const k = outcomeOf(e)
      out[k] = (out[k] ?? 0) + 1
    }
    return out
  }
}

export function ackedOf(e: Exchange): string[] {
  if (e.status === 200) return e.ids
  if (e.status !== 207) return []
  const rejected = new Set(((e.body?.errors as { index: number }[] | undefined) ?? []).map((r) => r.index))
  return e.ids.filter((_, i) => !rejected.has(i))
}

/** `200`, `503 NOT_DURABLE`, `error TypeError: fetch failed (ECONNREFUSED)`, `pending`… */
export function outcomeOf(e: Exchange): string {
  if (e.answeredAt === 0) return 'pending'
  if (e.error !== null) return `error ${e.error}`
  const code = (e.body?.error as { code?: string } | undefined)?.code
  return code ? `${e.status} ${code}` : String(e.status)
}

/** Poll until cond holds; the error names what was awaited and what was seen. */
export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  detail: () => string = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${detail()}`)
    await sleep(50)
  }
}

/** The longest time, from the fault on, between two acknowledgements: how long clients saw no 200. */
export function longestAckGapMs(exchanges: readonly Exchange[], from: number, to: number): number {
  const acks = exchanges
    .filter((e) => e.status === 200 && e.answeredAt >= from && e.answeredAt <= to)
    .map((e) => e.answeredAt)
    .sort((a, b) => a - b)
  let gap = 0
  let last = from
  for (const at of [...acks, to]) {
    gap = Math.max(gap, at - last)
    last = at
  }
  return gap
}
