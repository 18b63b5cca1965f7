// Broker stopped: requests get 503 + Retry-After promptly, and nothing acknowledged was lost.
// Runs against a private broker (test/support/second-broker.ts) so the shared one is never stopped.
// Two scenarios, each recorded in its beforeAll and then checked one contract promise per `it`:
//   stopped — steady load, stop the broker, keep sending, restart it, recover;
//   hung    — the same with the broker frozen (SIGSTOP): connections stay open and nothing
//             answers, so here it is ADGATE_ACK_TIMEOUT_MS that turns waiting into a 503.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { SETTINGS } from '../../config/config.js'
import { EVENT_INFO } from '../../events/catalog.js'
import { type Exchange, Load, sleep, waitFor } from '../faults/support/load.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { type RunningGateway, startGateway } from '../support/gateway.js'
import { acquireSecondBroker, type SecondBroker } from '../support/second-broker.js'

/**
 * This file is about the 503 path ("Kafka down and spool full"): the local spool is turned off
 * where the gateway has one, so a request the broker cannot take is refused, not spooled.
 */
const NO_SPOOL: Record<string, string> = Object.values(SETTINGS).some(
  (s) => s.env === 'ADGATE_SPOOL_MAX_BYTES',
)
  ? { ADGATE_SPOOL_MAX_BYTES: '0' }
  : {}

// Empty when there is no Java on this machine: then no broker of our own can run either.
const kafkaAvailable = inject('kafkaBrokers').length > 0

const ACK_TIMEOUT_MS = 3000
/** Every fetch is bounded: an answer later than this counts as a hang. */
const FETCH_TIMEOUT_MS = ACK_TIMEOUT_MS + 7000
/** "Promptly": a request waits for Kafka at most the ack timeout; this is the generous bound. */
const PROMPT_MS = ACK_TIMEOUT_MS + 3000
/** How long the load keeps going against the stopped broker after its first 503. */
const OUTAGE_LOAD_MS = ACK_TIMEOUT_MS + 2000
const CLIENTS = 4
const EVENTS_PER_REQUEST = 5
const TOPIC = EVENT_INFO.impression.topic

interface ReadySample {
  at: number
  answeredAt: number
  status: number | null
  body: Record<string, unknown> | null
  error: string | null
}

/** What one scenario recorded. `down`/`up`: the broker is known to be down from/until then. */
interface Recording {
  exchanges: Exchange[]
  ready: ReadySample[]
  /** our records in the topic, read up to the end offsets taken after the load */
  records: ReadRecord[]
  t: { downAsked: number; down: number; upAsked: number; up: number }
  gateway: RunningGateway
}

async function fetchJson(
  url: string,
  init: RequestInit,
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
  const text = await res.text()
  try {
    return { status: res.status, headers: res.headers, body: JSON.parse(text) }
  } catch {
    return { status: res.status, headers: res.headers, body: { raw: text } }
  }
}

/** endOffsets, retried: right after a restart the broker answers NOT_LEADER until it has loaded its partitions. */
async function endOffsetsRetrying(brokers: string[]): Promise<Map<string, Map<number, string>>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await endOffsets(brokers, [TOPIC])
    } catch (err) {
      if (attempt >= 20) throw err
      await sleep(500)
    }
  }
}

/** For failure messages: what the load and /readyz saw lately. */
function summary(r: Recording): string {
  const since = r.t.down || r.t.downAsked
  const after = r.exchanges.filter((e) => since > 0 && e.sentAt >= since)
  const byOutcome: Record<string, number> = {}
  for (const e of after) {
    const k = e.answeredAt === 0 ? 'pending' : (e.error ?? String(e.status))
    byOutcome[k] = (byOutcome[k] ?? 0) + 1
  }
  const last = r.exchanges.slice(-4).map((e) => ({ ...e, ids: e.ids.length }))
  const gw = r.gateway.process
  const logTail = r.gateway
    .logs()
    .split('\n')
    .filter((l) => !l.startsWith('{"level":30'))
    .slice(-15)
  return JSON.stringify(
    {
      t: r.t,
      sentSinceOutage: byOutcome,
      last,
      ready: r.ready.slice(-4),
      gateway: { exitCode: gw.exitCode, signal: gw.signalCode, logTail },
    },
    null,
    1,
  )
}

const describeError = (err: unknown) => `${(err as Error).name}: ${(err as Error).message}`

/**
 * Runs `scenario` while CLIENTS post small JSON impression batches (unique event ids) in a loop (the
 * fault suite's Load: after a 503 a client waits as its Retry-After says) and
 * /readyz is polled, then reads the topic back from `from` to the end offsets after the load.
 */
async function record(
  gateway: RunningGateway,
  brokers: string[],
  run: string,
  scenario: (r: Recording, answered: (pred: (e: Exchange) => boolean) => boolean) => Promise<void>,
): Promise<Recording> {
  const url = gateway.url
  const load = new Load(url, {
    run,
    clients: CLIENTS,
    eventsPerRequest: EVENTS_PER_REQUEST,
    pauseMs: 5,
    maxEvents: Number.POSITIVE_INFINITY,
    types: ['impression'],
    requestTimeoutMs: FETCH_TIMEOUT_MS,
  })
  const r: Recording = {
    exchanges: load.exchanges,
    ready: [],
    records: [],
    t: { downAsked: 0, down: 0, upAsked: 0, up: 0 },
    gateway,
  }
  const from = await endOffsetsRetrying(brokers)
  let on = true
  const poller = async () => {
    while (on) {
      const s: ReadySample = { at: Date.now(), answeredAt: 0, status: null, body: null, error: null }
      try {
        const res = await fetchJson(`${url}/readyz`, {})
        s.status = res.status
        s.body = res.body
      } catch (err) {
        s.error = describeError(err)
      }
      s.answeredAt = Date.now()
      r.ready.push(s)
      await sleep(100)
    }
  }
  load.start()
  const polling = poller()
  const answered = (pred: (e: Exchange) => boolean) => load.answered(pred)
  try {
    // Steady load against a healthy broker first.
    await sleep(1500)
    await waitFor(
      '20 answers of 200 before the outage',
      () => r.exchanges.filter((e) => e.status === 200).length >= 20,
      15_000,
      () => summary(r),
    )
    await scenario(r, answered)
    await waitFor(
      '/readyz 200 after the outage',
      () => r.ready.some((s) => s.at >= r.t.up && s.status === 200),
      45_000,
      () => summary(r),
    )
    await waitFor(
      'a 200 for a request sent after the outage',
      () => answered((e) => e.sentAt >= r.t.up && e.status === 200),
      45_000,
      () => summary(r),
    )
    await sleep(1000)
  } finally {
    on = false
    await Promise.all([polling, load.stop()])
  }

  const to = await endOffsetsRetrying(brokers)
  let total = 0
  for (const [partition, end] of to.get(TOPIC)!)
    total += Number(end) - Number(from.get(TOPIC)!.get(partition) ?? 0)
  // Only this file writes to the private broker: read exactly what was written during the load.
  r.records = (await readFrom(brokers, from, (rs) => rs.length >= total, 30_000)).filter((rec) =>
    String(rec.value.event_id).startsWith(`${run}-`),
  )
  return r
}

function report(name: string, r: Recording, extra: Record<string, unknown>): void {
  const rel = (at: number | undefined) => (at === undefined || at === 0 ? null : at - r.t.downAsked)
  const unavailable = r.exchanges.filter((e) => e.status === 503)
  const latencies = unavailable.map((e) => e.answeredAt - e.sentAt)
  const seen = new Map<string, number>()
  for (const rec of r.records)
    seen.set(String(rec.value.event_id), (seen.get(String(rec.value.event_id)) ?? 0) + 1)
  const firstOkAfter = r.exchanges
    .filter((e) => e.sentAt >= r.t.up && e.status === 200)
    .sort((a, b) => a.answeredAt - b.answeredAt)[0]
  console.log(
    `${name}: timings in ms, "at" relative to the outage command`,
    JSON.stringify(
      {
        ...extra,
        first503At: rel(unavailable.map((e) => e.answeredAt).sort((a, b) => a - b)[0]),
        latency503: { min: Math.min(...latencies), max: Math.max(...latencies), n: latencies.length },
        readyz503At: rel(r.ready.find((s) => s.at >= r.t.downAsked && s.status === 503)?.at),
        recoveryAskedAt: rel(r.t.upAsked),
        readyz200AfterRecovery: (r.ready.find((s) => s.at >= r.t.up && s.status === 200)?.at ?? 0) - r.t.up,
        first200AfterRecovery: (firstOkAfter?.answeredAt ?? 0) - r.t.up,
        requests: r.exchanges.length,
        ok: r.exchanges.filter((e) => e.status === 200).length,
        unavailable: unavailable.length,
        acceptedEvents: r.exchanges.filter((e) => e.status === 200).length * EVENTS_PER_REQUEST,
        duplicatesInKafka: [...seen.values()].filter((n) => n > 1).length,
        eventsOf503InKafka: unavailable.flatMap((e) => e.ids).filter((id) => seen.has(id)).length,
      },
      null,
      1,
    ),
  )
}

/** The promises that hold however the broker goes away. */
function contractChecks(get: () => Recording): void {
  it('answers every request: no hang, no connection error, only 200 or 503', () => {
    const { exchanges } = get()
    expect(exchanges.length).toBeGreaterThan(0)
    const bad = exchanges.filter((e) => e.error !== null || (e.status !== 200 && e.status !== 503))
    expect(bad, JSON.stringify(bad.slice(0, 5))).toEqual([])
    for (const e of exchanges) expect(e.answeredAt - e.sentAt).toBeLessThan(FETCH_TIMEOUT_MS)
  })

  it('answers 503 to every request sent while the broker is down, promptly', () => {
    const { exchanges, t } = get()
    const during = exchanges.filter(
      (e) => e.sentAt >= t.down && e.answeredAt > 0 && e.answeredAt <= t.upAsked,
    )
    expect(during.length).toBeGreaterThan(0)
    const notRefused = during.filter((e) => e.status !== 503)
    expect(notRefused, JSON.stringify({ t, notRefused: notRefused.slice(0, 3) })).toEqual([])
    for (const e of during) expect(e.answeredAt - e.sentAt).toBeLessThan(PROMPT_MS)
  })

  it('every 503 carries Retry-After and the NOT_DURABLE error body, accepting nothing', () => {
    const unavailable = get().exchanges.filter((e) => e.status === 503)
    expect(unavailable.length).toBeGreaterThan(0)
    for (const e of unavailable) {
      expect(e.retryAfter).toMatch(/^[1-9]\d*$/)
      expect(e.body).toMatchObject({
        error: { code: 'NOT_DURABLE', retryable: true, message: expect.stringContaining('nothing') },
        request_id: expect.any(String),
      })
      expect(e.body?.accepted ?? 0).toBe(0)
    }
  })

  it('/readyz answers throughout (never hangs)', () => {
    const { ready, t } = get()
    const bad = ready.filter((s) => s.error !== null || (s.status !== 200 && s.status !== 503))
    expect(bad, JSON.stringify(bad.slice(0, 5))).toEqual([])
    expect(ready.filter((s) => s.at >= t.down && s.at <= t.upAsked).length).toBeGreaterThan(0)
    for (const s of ready) expect(s.answeredAt - s.at).toBeLessThan(FETCH_TIMEOUT_MS)
  })

  it('/readyz answers 503 {ready:false} while the broker is down (once a send has failed)', () => {
    const { exchanges, ready, t } = get()
    const firstFailure = Math.min(...exchanges.filter((e) => e.status === 503).map((e) => e.answeredAt))
    const whileDown = ready.filter((s) => s.at >= firstFailure && s.answeredAt <= t.upAsked)
    expect(whileDown.length).toBeGreaterThan(0)
    expect(whileDown.some((s) => s.status === 503 && s.body?.ready === false)).toBe(true)
  })

  it('recovers: /readyz 200 again and requests get 200 again', () => {
    const { exchanges, ready, t } = get()
    expect(ready.some((s) => s.at >= t.up && s.status === 200)).toBe(true)
    const after = exchanges.filter((e) => e.sentAt >= t.up && e.status === 200)
    expect(after.length).toBeGreaterThan(0)
  })

  it('every event of every 200 answer is in Kafka; events of 503 answers are never counted as accepted', () => {
    const { exchanges, records } = get()
    const ok = exchanges.filter((e) => e.status === 200)
    expect(ok.length).toBeGreaterThan(0)
    for (const e of ok) expect(e.body).toMatchObject({ accepted: EVENTS_PER_REQUEST, rejected: 0 })
    const inKafka = new Set(records.map((r) => String(r.value.event_id)))
    const missing = ok.flatMap((e) => e.ids).filter((id) => !inKafka.has(id))
    expect(missing, `${missing.length} acknowledged events are missing from ${TOPIC}`).toEqual([])
    // Every event id belongs to exactly one request, so no 503 event can be among the accepted ones.
    const accepted = new Set(ok.flatMap((e) => e.ids))
    const both = exchanges
      .filter((e) => e.status === 503)
      .flatMap((e) => e.ids)
      .filter((id) => accepted.has(id))
    expect(both).toEqual([])
  })
}

describe.skipIf(!kafkaAvailable)('Kafka outage under load (private broker)', () => {
  let broker: SecondBroker | undefined
  let firstStartMs = 0

  beforeAll(async () => {
    broker = await acquireSecondBroker()
    firstStartMs = await broker.start()
  }, 120_000)
  afterAll(async () => {
    await broker?.release() // leaves the private broker stopped
  }, 60_000)

  /** What an outage does to the broker: take it down, what happens while it is down, bring it back. */
  interface Outage {
    down(b: SecondBroker): unknown
    /** after the first 503 for a request sent once it was down */
    whileDown(rec: Recording): Promise<unknown>
    up(b: SecondBroker): unknown
  }

  /**
   * Call inside a describe: a gateway without a spool on the private broker, recorded under load
   * through `outage`, reported as `name` (with `extra`), and stopped after the block's tests.
   */
  function outageRun(
    name: string,
    outage: Outage,
    extra: (r: Recording) => Record<string, unknown> = () => ({}),
  ): () => Recording {
    let gw: RunningGateway | undefined
    let r: Recording
    beforeAll(async () => {
      const b = broker!
      gw = await startGateway(b.brokers, { ADGATE_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS), ...NO_SPOOL })
      const run = `out-${name.replaceAll(' ', '-')}-${Date.now().toString(36)}`
      r = await record(gw, b.brokers, run, async (rec, answered) => {
        rec.t.downAsked = Date.now()
        try {
          await outage.down(b)
          rec.t.down = Date.now()
          // Requests in flight when the broker went were sent before it: wait for one sent after.
          await waitFor(
            `a 503 for a request sent after the outage began (${name})`,
            () => answered((e) => e.sentAt >= rec.t.down && e.status === 503),
            20_000,
            () => summary(rec),
          )
          await outage.whileDown(rec)
        } finally {
          rec.t.upAsked = Date.now()
          await outage.up(b)
          rec.t.up = Date.now()
        }
      })
      report(name, r, extra(r))
    }, 120_000)
    afterAll(async () => {
      if (gw) expect(await gw.stop()).toBe(0)
    })
    return () => r
  }

  describe('broker stopped: 503 + Retry-After promptly, nothing acknowledged lost', () => {
    const r = outageRun(
      'broker stopped',
      {
        down: (b) => b.stop(),
        whileDown: () => sleep(OUTAGE_LOAD_MS),
        up: (b) => b.start(),
      },
      (r) => ({
        firstBrokerStart: firstStartMs,
        brokerStop: r.t.down - r.t.downAsked,
        brokerRestart: r.t.up - r.t.upAsked,
      }),
    )
    contractChecks(r)
  })

  describe('broker hung (SIGSTOP): 503 after ADGATE_ACK_TIMEOUT_MS, never a hang', () => {
    const r = outageRun('broker hung', {
      down: (b) => b.freeze(),
      async whileDown(rec) {
        // Readiness turns 503 once a send has failed; let clients and /readyz see that for a while.
        const firstFailure = Math.min(
          ...rec.exchanges.filter((e) => e.status === 503).map((e) => e.answeredAt),
        )
        const deadline = Date.now() + 10_000
        while (Date.now() < deadline && !rec.ready.some((s) => s.at >= firstFailure && s.status === 503))
          await sleep(25)
        await sleep(1000)
      },
      up: (b) => b.thaw(),
    })
    contractChecks(r)

    // A Produce request already written to a broker that then hangs cannot be taken back: when the
    // broker resumes it may append those events. Without a spool the gateway answers 503 (it vouches
    // for none of them) and says the events may still be written; only such answers may leak.
    it('events of a 503 reach Kafka only when the 503 said they might', () => {
      const inKafka = new Set(r().records.map((rec) => String(rec.value.event_id)))
      const leakedFrom = r().exchanges.filter((e) => e.status === 503 && e.ids.some((id) => inKafka.has(id)))
      for (const e of leakedFrom) expect(JSON.stringify(e.body)).toMatch(/may still be written/)
    })
  })
})
