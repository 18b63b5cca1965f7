import type { Authenticator, Principal } from './auth.js'

/**
 * The decode time each client spends on work that is refused (bodies answered 4xx, rejected events),
 * so that one client sending the worst bodies it can build cannot take the decode workers from the
 * others (issue 15, the noisy neighbour). A client is its API key, or its address when there are no
 * keys. Its debt is the refused decode time it was charged, draining at `msPerSecond`; up to one
 * second's worth is free, and beyond that its next bodies wait (no CPU is spent on them while they
 * wait) until the debt is back under it. A client that already has `maxWaiting` bodies waiting is
 * refused at once (429) instead, so waiting bodies stay few. Valid work is never charged.
 *
 * A client that went over its free share is on probation for `probationMs` after it last was: its
 * bodies are decoded apart from everyone else's (workers/pool.ts, the probation lane), so its next
 * costly body takes no worker and no event-loop time from clients in good standing.
 *
 * Charges land only when a body is decoded, so a burst sent at once would all be decoded on the
 * shared workers before the first charge. Each body is therefore charged at admission (admit) with
 * an estimate, its size times its client's refused decode time per byte (a client not seen yet: the
 * worst measured, WORST_MS_PER_BYTE; one whose last body was valid: 0; otherwise the costliest per
 * byte of its refused bodies since its last valid one), and settled when decoded (settle). A body
 * whose estimate, with its client's debt and bodies in flight, is over the free share is decoded
 * apart. Its own estimate counts: a client back from probation (30 s quiet, debt paid) whose next
 * body is its 500 ms CSV must not run it on a shared worker, where every valid body waited behind it
 * (issue 15: the valid client's p99 went from ~40 to ~285 ms in the rounds after such a pause). And
 * the costliest rate, not the last body's: a cheap refusal (a 413) must not make its next, costly
 * kind look cheap. Estimates only route: they never make a body wait or refuse it, and a client
 * sending valid work reserves nothing (a busy client with many large valid bodies in flight must not
 * be sent to the one-thread lane).
 */
export class RefusedWork {
  private readonly debts = new Map<string, Debt>()

  constructor(
    private readonly msPerSecond: number,
    private readonly maxWaiting = 4,
    private readonly now: () => number = Date.now,
    private readonly probationMs = PROBATION_MS,
  ) {}

  /**
   * A body of `bytes` arrives: whether it must be decoded apart (the client is on probation, or its
   * debt and its bodies in flight are over its free share). Its estimate is reserved until
   * settle() with the same `admitted`.
   */
  admit(client: string, bytes: number): Admitted {
    const debt = this.debtOf(client)
    const estimateMs = bytes * debt.msPerByte
    const apart =
      this.onProbation(client) || this.drain(debt) + debt.inFlightMs + estimateMs > this.msPerSecond
    debt.inFlight++
    debt.inFlightMs += estimateMs
    if (this.debts.size > MAX_CLIENTS) this.forgetPaidUp()
    return { apart, estimateMs }
  }

  /**
   * The body admitted as `admitted` was decoded: its estimate is released, `refusedMs` of its decode
   * time charged, and the client's estimate per byte becomes 0 if it was valid, else the costlier of
   * its estimate and this body's refused time per byte. A failed decode (null) is charged nothing and
   * teaches nothing.
   */
  settle(client: string, admitted: Admitted, bytes: number, refusedMs: number | null): void {
    const debt = this.debtOf(client)
    // Exactly 0 once none is in flight: sums of floats would leave a residue.
    debt.inFlightMs = --debt.inFlight === 0 ? 0 : Math.max(0, debt.inFlightMs - admitted.estimateMs)
    if (refusedMs === null) return
    if (refusedMs === 0) debt.msPerByte = 0
    else if (bytes > 0) debt.msPerByte = Math.max(debt.msPerByte, refusedMs / bytes)
    this.charge(client, refusedMs)
  }

  /** Whether this client went over its free share within the last probationMs. */
  onProbation(client: string): boolean {
    const debt = this.debts.get(client)
    return debt !== undefined && this.now() - debt.overAt < this.probationMs
  }

  /** How long (ms) this client's next body must wait before it is decoded; 0: now. */
  waitMs(client: string): number {
    const debt = this.debts.get(client)
    if (debt === undefined) return 0
    const over = this.drain(debt) - this.msPerSecond
    return over > 0 ? Math.ceil((over / this.msPerSecond) * 1000) : 0
  }

  /** Whether this client may queue one more waiting body (else it is answered 429 now). */
  mayWait(client: string): boolean {
    return (this.debts.get(client)?.waiting ?? 0) < this.maxWaiting
  }

  /**
   * When this client's next body may be decoded: now, or after waiting (spending no CPU) until its
   * debt is back under one second's worth, looked at again on waking, since its other bodies may
   * have added to it meanwhile (without that, every body waiting woke together and all were
   * decoded). A client that already has maxWaiting bodies waiting is refused instead (429).
   */
  async turn(client: string): Promise<Turn> {
    let ms = this.waitMs(client)
    if (ms === 0) return NOW
    const debt = this.debtOf(client)
    if (debt.waiting >= this.maxWaiting) return { go: false, retryAfterMs: ms }
    debt.waiting++
    try {
      while (ms > 0) {
        await new Promise((resolve) => setTimeout(resolve, ms))
        ms = this.waitMs(client)
      }
    } finally {
      debt.waiting--
    }
    return WAITED
  }

  /** Charge refused decode time to a client. */
  charge(client: string, ms: number): void {
    if (ms <= 0) return
    const debt = this.debtOf(client)
    debt.ms = this.drain(debt) + ms
    if (debt.ms > this.msPerSecond) debt.overAt = debt.at
    if (this.debts.size > MAX_CLIENTS) this.forgetPaidUp()
  }

  private debtOf(client: string): Debt {
    let debt = this.debts.get(client)
    if (debt === undefined) {
      debt = {
        ms: 0,
        at: this.now(),
        waiting: 0,
        overAt: Number.NEGATIVE_INFINITY,
        inFlight: 0,
        inFlightMs: 0,
        msPerByte: WORST_MS_PER_BYTE,
      }
      this.debts.set(client, debt)
    }
    return debt
  }

  /** The debt after draining since it was last looked at. */
  private drain(debt: Debt): number {
    const now = this.now()
    debt.ms = Math.max(0, debt.ms - ((now - debt.at) / 1000) * this.msPerSecond)
    debt.at = now
    return debt.ms
  }

  /**
   * Clients with no debt, nothing waiting or in flight and no probation are forgotten (the map stays
   * bounded by the indebted and the busy); one forgotten is estimated as one not seen yet.
   */
  private forgetPaidUp(): void {
    for (const [client, debt] of this.debts)
      if (debt.waiting === 0 && debt.inFlight === 0 && this.drain(debt) === 0 && !this.onProbation(client))
        this.debts.delete(client)
  }

  /** Clients tracked (tests: the map stays bounded). */
  get size(): number {
    return this.debts.size
  }
}

/** Whether a body may be decoded (after waiting or not), or is refused with a Retry-After. */
export type Turn =
  | { readonly go: true; readonly waited: boolean }
  | { readonly go: false; readonly retryAfterMs: number }
const NOW: Turn = { go: true, waited: false }
const WAITED: Turn = { go: true, waited: true }

interface Debt {
  /** Refused decode time owed, in ms, as of `at`. */
  ms: number
  at: number
  /** Bodies of this client waiting for the debt to drain. */
  waiting: number
  /** When its debt last went over the free share (its probation runs from then). */
  overAt: number
  /** Its bodies admitted and not yet settled, and their estimates. */
  inFlight: number
  inFlightMs: number
  /** Its last body's refused decode time per byte: the estimate for its next. */
  msPerByte: number
}

/** A body's admission: decoded apart or not, and the estimate reserved for it. */
export interface Admitted {
  readonly apart: boolean
  readonly estimateMs: number
}

const MAX_CLIENTS = 10_000
/**
 * The estimate per byte of a client not seen yet: about the worst decode cost measured (10k invalid
 * NDJSON events in 29 KB took 45–80 ms, issue 15), so a new client's burst counts as that costly
 * until its first body says otherwise.
 */
export const WORST_MS_PER_BYTE = 0.003
/** How long a client that went over its free share is decoded apart from the others. */
export const PROBATION_MS = 30_000

/**
 * Who is charged for refused work: the API key; without keys, the client's address
 * (client-address.ts: behind a trusted proxy, the one X-Forwarded-For names).
 */
export function clientOf(auth: Authenticator, principal: Principal, address: string): string {
  return auth.enabled ? principal.name : address
}
