// Fault scenario 7: a slow broker. The private broker throttles the gateway's producer with a
// Kafka client quota (producer_byte_rate, set with Kafka's own ConfigCommand for the gateway's
// client id only), while load keeps coming. With a small spool and a small pending-bytes bound
// the gateway must stay within its memory bound and answer 503 + Retry-After instead of queueing
// without limit; once the quota is lifted the spool drains and every acknowledged event is in Kafka.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningGateway } from '../support/gateway.js'
import { type Exchange, Load, sleep, waitFor } from './support/load.js'
import { ReadyPoller, waitRecovered } from './support/observe.js'
import { kafkaAvailable, kafkaConfigs, logTail, Rig } from './support/rig.js'
import { expectAnswered, expectNoAckedLoss, type Recorded, Recording } from './support/verify.js'

const MIB = 1 << 20
/** Bytes/s the broker lets the gateway produce while throttled: far below what the load offers. */
const THROTTLED_RATE = 16 * 1024
const CLIENT_ID = 'adgate-fault-slow'
/** Generous: the gateway idles at ~120-150 MB; without a bound the load would push it far above. */
const RSS_BOUND_MB = 400
const REQUEST_TIMEOUT_MS = 20_000
/** How long the load keeps running against the throttled broker once it is refused. */
const REFUSED_FOR_MS = 3000

const quota = (brokers: string[], op: '--add-config' | '--delete-config', value: string) =>
  kafkaConfigs(brokers, ['--alter', op, value, '--entity-type', 'clients', '--entity-name', CLIENT_ID])

describe.skipIf(!kafkaAvailable)('fault injection: 7. slow (throttled) broker under load', () => {
  // Every fault file's state: the rig, its gateway, the load and what was recorded.
  let rig: Rig
  let gw: RunningGateway
  let load: Load
  let ready: ReadyPoller
  let r: Recorded
  let throttled = false
  const t = { throttled: 0, firstRefusal: 0, unthrottled: 0, drained: 0 }
  Recording.reportAfterAll(() => r)

  const refused = (e: Exchange) => e.status === 503

  beforeAll(async () => {
    rig = await Rig.acquire()
    gw = await rig.gateway({
      KAFKA_CLIENT_ID: CLIENT_ID,
      ADGATE_SPOOL_MAX_BYTES: '1MiB',
      ADGATE_MAX_PENDING_BYTES: '1MiB',
      ADGATE_SPOOL_AFTER_MS: '500',
    })
    const recording = await Recording.begin(rig, 'slow-broker')
    load = new Load(gw.url, {
      run: recording.run,
      clients: 4,
      eventsPerRequest: 20,
      pauseMs: 300,
      maxEvents: 10_000,
      types: ['bid'], // the largest events: the bounds are reached with fewer of them
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    })
    ready = new ReadyPoller(() => gw.url, 200)
    const detail = () =>
      `${JSON.stringify({ t, outcomes: load.outcomes(), sent: load.eventsSent, ready: ready.samples.slice(-3) })}\n${logTail(gw)}`
    load.start()
    try {
      await load.waitAcked('10 acknowledged requests', 10, 0, 20_000, detail)
      await quota(rig.brokers, '--add-config', `producer_byte_rate=${THROTTLED_RATE}`)
      throttled = true
      t.throttled = Date.now()
      load.pauseMs = 5 // offer far more than the broker takes
      await waitFor('a 503 (the bounds are reached)', () => load.answered(refused), 60_000, detail)
      t.firstRefusal = Math.min(...load.exchanges.filter(refused).map((e) => e.answeredAt))
      await sleep(REFUSED_FOR_MS)
      load.pauseMs = 300
    } finally {
      if (throttled) await quota(rig.brokers, '--delete-config', 'producer_byte_rate')
      throttled = false
      t.unthrottled = Date.now()
    }
    try {
      t.drained = await waitRecovered(gw.url, load, { drainMs: 60_000, ackedMs: 20_000 }, detail)
    } finally {
      await load.stop()
      await ready.stop()
    }
    r = await recording.end(load, [gw], () => ({
      producer_byte_rate: THROTTLED_RATE,
      refused_requests: load.exchanges.filter(refused).length,
      max_pending_bytes_seen: Math.max(0, ...ready.samples.map((s) => s.r?.pending_bytes ?? 0)),
      max_spool_bytes_seen: Math.max(0, ...ready.samples.map((s) => s.r?.spool?.bytes ?? 0)),
      drain_ms: t.drained - t.unthrottled,
    }))
  }, 240_000)

  afterAll(async () => {
    try {
      if (throttled) await quota(rig.brokers, '--delete-config', 'producer_byte_rate')
    } finally {
      await rig?.release()
    }
  }, 60_000)

  it('answers 503 NOT_DURABLE (Retry-After, nothing accepted) once its bounds are reached, 200 otherwise; never a hang', () => {
    expectAnswered(load, (_, o) => o === '200' || o === '503 NOT_DURABLE')
    expect(load.exchanges.filter(refused).length).toBeGreaterThan(0)
    for (const e of load.exchanges) expect(e.answeredAt - e.sentAt).toBeLessThan(REQUEST_TIMEOUT_MS)
  })

  it(`stays within its memory bound: VmHWM under ${RSS_BOUND_MB} MB`, () => {
    expect(r.fig.gateway_rss_peak_mb).toBeGreaterThan(0)
    expect(r.fig.gateway_rss_peak_mb).toBeLessThan(RSS_BOUND_MB)
  })

  it('never holds more than ADGATE_MAX_PENDING_BYTES for Kafka or ADGATE_SPOOL_MAX_BYTES in the spool', () => {
    expect(ready.samples.length).toBeGreaterThan(10)
    for (const s of ready.samples) {
      if (!s.r) continue
      expect(s.r.pending_bytes).toBeLessThanOrEqual(MIB)
      expect(s.r.spool?.bytes ?? 0).toBeLessThanOrEqual(MIB)
    }
  })

  it('recovers when the broker speeds up: the spool drains, 200 again', () => {
    expect(t.drained).toBeGreaterThan(0)
    expect(load.acked().filter((e) => e.sentAt > t.drained).length).toBeGreaterThan(0)
    expect(r.exitCode).toBe(0)
  })

  it('every acknowledged event is in Kafka', () => {
    expectNoAckedLoss(load, r.down)
    expect(r.fig.missing).toBe(0)
  })
})
