// SIGTERM during load: the gateway drains and exits 0, and every client learns the fate of its
// events: 200 (and then they are all in Kafka), 503 DRAINING with Retry-After, or no response at
// all (connection refused or reset). Never a 2xx for events that are not in Kafka, never a hang,
// never a connection cut in the middle of an answer. Uses the shared broker (nothing here stops it).
import http from 'node:http'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { SETTINGS } from '../../config/config.js'
import { EVENT_INFO } from '../../events/catalog.js'
import { CONTENT_TYPE, encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { endOffsets, type ReadRecord, readRange } from '../support/consume.js'
import { type RunningGateway, startGateway } from '../support/gateway.js'

/**
 * No local spool (where the gateway has one): then 200 means "in Kafka", which this file checks,
 * rather than "in a spool that dies with the test's temporary data dir".
 */
const NO_SPOOL: Record<string, string> = Object.values(SETTINGS).some(
  (s) => s.env === 'ADGATE_SPOOL_MAX_BYTES',
)
  ? { ADGATE_SPOOL_MAX_BYTES: '0' }
  : {}

const brokers = inject('kafkaBrokers')

const SHUTDOWN_TIMEOUT_MS = 8000
const ACK_TIMEOUT_MS = 5000
/** Exit must come within the drain limit plus this (the Kafka flush is bounded by the ack timeout). */
const EXIT_MARGIN_MS = ACK_TIMEOUT_MS + 5000
/** Every request is bounded: an answer later than this counts as a hang. */
const REQUEST_TIMEOUT_MS = 15_000
const KEEPALIVE_CLIENTS = 3
const FRESH_CONNECTION_CLIENTS = 3
const EVENTS_PER_REQUEST = 5
const TOPIC = EVENT_INFO.impression.topic
/** Failures that mean "no response was received": the client knows nothing was acknowledged. */
const NO_RESPONSE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE'])

type Outcome =
  | { kind: 'answer'; status: number; retryAfter: string | undefined; body: Record<string, unknown> }
  /** failed before any response byte (refused, reset, hang up) */
  | { kind: 'no-response'; code: string }
  /** failed after the response had started: the client cannot know what happened (must not occur) */
  | { kind: 'cut'; code: string }

interface Exchange {
  client: string
  ids: string[]
  sentAt: number
  answeredAt: number
  outcome: Outcome | null
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) return false
    await sleep(10)
  }
  return true
}

function parse(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text)
  } catch {
    return { raw: text }
  }
}

/** One HTTP request with node:http, so "no response" and "response cut" can be told apart. */
function exchange(
  port: number,
  method: 'GET' | 'POST',
  path: string,
  agent: http.Agent | false,
  body?: Buffer,
): Promise<Outcome> {
  const headers: Record<string, string | number> = {}
  if (body) {
    headers['content-type'] = CONTENT_TYPE.json
    headers['content-length'] = body.length
  }
  if (agent === false) headers.connection = 'close'
  const req = http.request({
    host: '127.0.0.1',
    port,
    method,
    path,
    agent,
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
  const done = outcomeOf(req)
  req.end(body)
  return done
}

/** What became of a request: its answer, no response at all, or a response cut short. */
function outcomeOf(req: http.ClientRequest): Promise<Outcome> {
  return new Promise((resolve) => {
    let responded = false
    req.on('response', (res) => {
      responded = true
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () =>
        resolve({
          kind: 'answer',
          status: res.statusCode ?? 0,
          retryAfter: res.headers['retry-after'],
          body: parse(Buffer.concat(chunks).toString()),
        }),
      )
      res.on('error', (err) =>
        resolve({ kind: 'cut', code: (err as NodeJS.ErrnoException).code ?? err.name }),
      )
    })
    req.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? err.name
      resolve(responded ? { kind: 'cut', code } : { kind: 'no-response', code })
    })
  })
}

describe.skipIf(brokers.length === 0)('SIGTERM during load: drain, exit 0, no 2xx for lost events', () => {
  let gw: RunningGateway
  const run = `sd-${Date.now().toString(36)}-${process.pid}`
  const exchanges: Exchange[] = []
  const ready: { at: number; outcome: Outcome }[] = []
  let sigtermAt = 0
  let exitCode: number | NodeJS.Signals | 'timeout' | null = null
  let exitAfterMs = 0
  let slow: Outcome | null = null
  let freshDuringDrain: Outcome | null = null
  let records: ReadRecord[] = []
  let readBackMs = 0
  let readComplete = false
  let written = ''

  beforeAll(async () => {
    gw = await startGateway(brokers, {
      ADGATE_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      ADGATE_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
      ...NO_SPOOL,
    })
    const port = gw.port
    const from = await endOffsets(brokers, [TOPIC])

    let seq = 0
    const nextBody = () => {
      const events = generateEvents('impression', EVENTS_PER_REQUEST, seq + 7)
      for (const e of events) e.event_id = `${run}-${seq++}`
      return {
        ids: events.map((e) => e.event_id as string),
        body: encodeEvents('impression', events, 'json'),
      }
    }

    let loadOn = true
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: KEEPALIVE_CLIENTS })
    const client = async (name: string, agent: http.Agent | false) => {
      while (loadOn) {
        const { ids, body } = nextBody()
        const ex: Exchange = { client: name, ids, sentAt: Date.now(), answeredAt: 0, outcome: null }
        exchanges.push(ex)
        ex.outcome = await exchange(port, 'POST', '/v1/impressions', agent, body)
        ex.answeredAt = Date.now()
        await sleep(ex.outcome.kind === 'answer' && ex.outcome.status === 200 ? 2 : 20)
      }
    }
    // /readyz on its own kept-alive connection: after SIGTERM the listening socket is closed, so
    // only a connection opened before can still see the draining answer.
    let pollOn = true
    const readyAgent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    const poller = async () => {
      while (pollOn) {
        const at = Date.now()
        ready.push({ at, outcome: await exchange(port, 'GET', '/readyz', readyAgent) })
        await sleep(20)
      }
    }

    const polling = poller()
    const loads = [
      ...Array.from({ length: KEEPALIVE_CLIENTS }, (_, i) => client(`keepalive-${i}`, keepAlive)),
      ...Array.from({ length: FRESH_CONNECTION_CLIENTS }, (_, i) => client(`fresh-${i}`, false)),
    ]
    try {
      await sleep(800)
      await waitFor(
        () => exchanges.filter((e) => e.outcome?.kind === 'answer' && e.outcome.status === 200).length >= 30,
        15_000,
      )

      // A request whose body is half sent holds the drain open, so the draining state is observable.
      const s = nextBody()
      const slowReq = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/impressions',
        agent: false,
        headers: { 'content-type': CONTENT_TYPE.json, 'content-length': s.body.length },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
      const slowDone = outcomeOf(slowReq)
      const half = Math.floor(s.body.length / 2)
      await new Promise<void>((resolve) => slowReq.write(s.body.subarray(0, half), () => resolve()))
      await sleep(300) // the gateway has the headers: it counts the request as in flight

      sigtermAt = Date.now()
      const exited = gw.stop('SIGTERM')
      // While the slow request is unfinished the gateway is draining: /readyz (kept-alive) says 503
      // and a new connection is refused.
      await waitFor(
        () => ready.some((r) => r.at > sigtermAt && r.outcome.kind === 'answer' && r.outcome.status === 503),
        3000,
      )
      freshDuringDrain = await exchange(port, 'POST', '/v1/impressions', false, nextBody().body)
      await sleep(500) // the load keeps hitting the draining gateway on its kept-alive connections
      slowReq.end(s.body.subarray(half))
      slow = await slowDone

      const limit = SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS
      exitCode = await Promise.race([exited, sleep(limit).then(() => 'timeout' as const)])
      exitAfterMs = Date.now() - sigtermAt
      await sleep(300) // the load keeps going against a stopped gateway: refused, never hung
    } finally {
      loadOn = false
      await Promise.all(loads)
      pollOn = false
      await polling
      keepAlive.destroy()
      readyAgent.destroy()
    }

    // The gateway has exited: everything it acknowledged is below the topic's end offsets now, so
    // the read goes up to them (through other writers' records on the shared topic), not to a clock.
    const to = await endOffsets(brokers, [TOPIC])
    const mark = Buffer.from(`${run}-`)
    const readStart = Date.now()
    const read = await readRange(brokers, from, to, (value) => value.includes(mark))
    records = read.records.filter((r) => String(r.value.event_id).startsWith(`${run}-`))
    readComplete = read.complete
    readBackMs = Date.now() - readStart
    // Records the topic gained per partition (this run's and any other writer's).
    written = JSON.stringify(
      Object.fromEntries(
        [...(to.get(TOPIC) ?? new Map<number, string>())].map(([p, end]) => [
          p,
          Number(BigInt(end) - BigInt(from.get(TOPIC)?.get(p) ?? '0')),
        ]),
      ),
    )

    const count = (pred: (o: Outcome) => boolean) =>
      exchanges.filter((e) => e.outcome && pred(e.outcome)).length
    const afterSigterm = ready.filter((r) => r.at > sigtermAt)
    console.log(
      'shutdown observations',
      JSON.stringify(
        {
          exitCode,
          exitAfterSigtermMs: exitAfterMs,
          requests: exchanges.length,
          ok: count((o) => o.kind === 'answer' && o.status === 200),
          draining503: count(
            (o) =>
              o.kind === 'answer' &&
              o.status === 503 &&
              (o.body.error as { code?: string })?.code === 'DRAINING',
          ),
          notDurable503: count(
            (o) =>
              o.kind === 'answer' &&
              o.status === 503 &&
              (o.body.error as { code?: string })?.code === 'NOT_DURABLE',
          ),
          noResponse: Object.fromEntries(
            [...NO_RESPONSE, 'other'].map((c) => [
              c,
              count(
                (o) => o.kind === 'no-response' && (c === 'other' ? !NO_RESPONSE.has(o.code) : o.code === c),
              ),
            ]),
          ),
          readyzAfterSigterm: afterSigterm
            .map((r) => (r.outcome.kind === 'answer' ? r.outcome.status : r.outcome.code))
            .join(','),
          slowRequest:
            slow?.kind === 'answer' ? `${slow.status} ${(slow.body.error as { code?: string })?.code}` : slow,
          freshConnectionDuringDrain:
            freshDuringDrain?.kind === 'answer' ? freshDuringDrain.status : freshDuringDrain?.code,
          eventsInKafka: records.length,
          readBackMs,
          readComplete,
        },
        null,
        1,
      ),
    )
  }, 420_000)

  afterAll(async () => {
    if (gw && gw.process.exitCode === null && gw.process.signalCode === null) await gw.stop('SIGKILL')
  })

  it('exits 0 within ADGATE_SHUTDOWN_TIMEOUT_MS + margin', () => {
    expect(exitCode).toBe(0)
    expect(exitAfterMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS)
    expect(gw.logs()).toContain('"msg":"draining"')
    expect(gw.logs()).toContain('"msg":"gateway stopped"')
    expect(gw.logs()).toMatch(/"unanswered":0/)
  })

  it('every request ends in 200, a 503 with Retry-After, or no response at all; never a hang or a cut answer', () => {
    expect(exchanges.length).toBeGreaterThan(0)
    for (const e of exchanges) {
      const o = e.outcome!
      const where = `${e.client} sent ${e.sentAt - sigtermAt} ms after SIGTERM: ${JSON.stringify(o)}`
      expect(o.kind, where).not.toBe('cut')
      if (o.kind === 'no-response') {
        expect(NO_RESPONSE.has(o.code), where).toBe(true)
        expect(e.answeredAt, where).toBeGreaterThanOrEqual(sigtermAt) // only the shutdown may break connections
        continue
      }
      if (o.kind !== 'answer') continue
      if (o.status === 200) {
        expect(o.body, where).toMatchObject({ accepted: EVENTS_PER_REQUEST, rejected: 0 })
        continue
      }
      expect(o.status, where).toBe(503)
      expect(e.answeredAt, where).toBeGreaterThanOrEqual(sigtermAt)
      expect(o.retryAfter, where).toMatch(/^[1-9]\d*$/)
      // Kafka is healthy here, so the only reason to refuse is the shutdown.
      expect(o.body, where).toMatchObject({ error: { code: 'DRAINING', retryable: true } })
    }
  })

  it('the load overlapped the shutdown: answers before SIGTERM and refusals after it', () => {
    expect(
      exchanges.some(
        (e) => e.answeredAt < sigtermAt && e.outcome?.kind === 'answer' && e.outcome.status === 200,
      ),
    ).toBe(true)
    expect(
      exchanges.some((e) => e.sentAt > sigtermAt + exitAfterMs && e.outcome?.kind === 'no-response'),
    ).toBe(true)
  })

  it('drains: /readyz answers 503 on an open connection, new connections are refused, a request still receiving its body gets 503 DRAINING', () => {
    const afterSigterm = ready.filter((r) => r.at > sigtermAt).map((r) => r.outcome)
    const first503 = afterSigterm.findIndex((o) => o.kind === 'answer' && o.status === 503)
    expect(first503, JSON.stringify(afterSigterm.slice(0, 5))).toBeGreaterThanOrEqual(0)
    expect(afterSigterm[first503]).toMatchObject({ body: { ready: false } })
    // once draining, never ready again
    expect(afterSigterm.slice(first503).filter((o) => o.kind === 'answer' && o.status !== 503)).toEqual([])
    expect(freshDuringDrain).toEqual({ kind: 'no-response', code: 'ECONNREFUSED' })
    expect(slow).toMatchObject({
      kind: 'answer',
      status: 503,
      retryAfter: expect.stringMatching(/^[1-9]\d*$/),
      body: { error: { code: 'DRAINING' } },
    })
  })

  it('every event of every 200 answer is in Kafka', () => {
    const ok = exchanges.filter((e) => e.outcome?.kind === 'answer' && e.outcome.status === 200)
    expect(ok.length).toBeGreaterThan(0)
    const inKafka = new Set(records.map((r) => String(r.value.event_id)))
    const missing = ok.flatMap((e) => e.ids).filter((id) => !inKafka.has(id))
    // The read reached every partition's end offset (complete), or its broker stopped answering.
    const where = `read back ${records.length} records in ${readBackMs} ms, ${readComplete ? "up to every partition's end offset" : 'NOT up to the end offsets: the broker stopped answering'}; per partition: ${JSON.stringify(perPartition(records))}; records the topic gained per partition: ${written}`
    expect(readComplete, where).toBe(true)
    expect(missing, `${missing.length} acknowledged events are missing from ${TOPIC} (${where})`).toEqual([])
  })
})

/** How many of the run's records each partition held, with their offsets' range. */
function perPartition(rs: ReadRecord[]): Record<string, { records: number; first: string; last: string }> {
  const out: Record<string, { records: number; first: string; last: string }> = {}
  for (const r of rs) {
    out[String(r.partition)] ??= { records: 0, first: String(r.offset), last: String(r.offset) }
    const p = out[String(r.partition)]!
    p.records++
    p.last = String(r.offset)
  }
  return out
}
