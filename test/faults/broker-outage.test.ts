// Fault scenario 2: the (private) broker is stopped for ~30 s under load with the spool on.
// Requests keep getting 200 (durable in the spool), /readyz stays 200 (the spool is writable);
// once the broker is back the spool drains to zero and every acknowledged event is in Kafka.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningGateway } from '../support/gateway.js'
import { Load, sleep, waitFor } from './support/load.js'
import { metric, ReadyPoller, waitDrained } from './support/observe.js'
import { kafkaAvailable, logTail, Rig, runId } from './support/rig.js'
import {
  type Downstream,
  expectAnswered,
  expectNoAckedLoss,
  type Figures,
  figures,
  offsetsNow,
  readBack,
  report,
  trackPassed,
} from './support/verify.js'

const OUTAGE_MS = 30_000

describe.skipIf(!kafkaAvailable)('fault injection: 2. broker stopped for 30 s under load, spool on', () => {
  let rig: Rig
  let gw: RunningGateway
  let load: Load
  let ready: ReadyPoller
  let down: Downstream
  let fig: Figures
  let exitCode: number | null
  const t = { down: 0, upAsked: 0, up: 0, drained: 0 }
  const m = { spooledEventsAtEnd: 0, spoolEventsAfterDrain: -1, replayed: 0, toKafkaAfterDrain: 0 }
  const passed = trackPassed()

  beforeAll(async () => {
    rig = await Rig.acquire()
    gw = await rig.gateway()
    const run = runId('broker-outage')
    const from = await offsetsNow(rig.brokers)
    // ~2 clients x 10 events every ~150 ms: about 6k events over the whole scenario
    load = new Load(gw.url, { run, clients: 2, pauseMs: 150, maxEvents: 10_000 })
    const detail = () => `${JSON.stringify({ t, outcomes: load.outcomes() })}\n${logTail(gw)}`
    ready = new ReadyPoller(() => gw.url, 250)
    load.start()
    try {
      await waitFor('20 acknowledged requests', () => load.acked().length >= 20, 20_000, detail)
      const downAsked = Date.now()
      try {
        await rig.broker.stop()
        t.down = Date.now()
        await sleep(Math.max(0, downAsked + OUTAGE_MS - Date.now()))
        m.spooledEventsAtEnd = await metric(gw.url, 'adgate_spool_events')
      } finally {
        t.upAsked = Date.now()
        await rig.broker.start()
        t.up = Date.now()
      }
      await waitDrained(gw.url, 90_000, detail)
      t.drained = Date.now()
      m.spoolEventsAfterDrain = await metric(gw.url, 'adgate_spool_events')
      m.replayed = await metric(gw.url, 'adgate_spool_replayed_events_total')
      const kafkaBefore = await metric(gw.url, 'adgate_deliveries_total{destination="kafka"}', 0)
      await waitFor(
        '20 requests acknowledged after the drain',
        () => load.acked().filter((e) => e.sentAt > t.drained).length >= 20,
        20_000,
        detail,
      )
      m.toKafkaAfterDrain =
        (await metric(gw.url, 'adgate_deliveries_total{destination="kafka"}', 0)) - kafkaBefore
    } finally {
      await load.stop()
      await ready.stop()
    }
    const rss = rig.rss.peakMb(gw.process.pid)
    exitCode = await gw.stop()
    down = await readBack(rig.brokers, from, run)
    fig = figures('broker-outage', load, down, rss, {
      outage_ms: t.up - t.down,
      acked_during_outage: load.acked().filter((e) => e.sentAt >= t.down && e.answeredAt <= t.upAsked).length,
      spooled_events_at_outage_end: m.spooledEventsAtEnd,
      drain_ms: t.drained - t.up,
      replayed_events: m.replayed,
    })
  }, 240_000)

  afterAll(async () => {
    if (fig) report(fig, passed())
    await rig?.release()
  }, 60_000)

  it('answers 200 to every request, before, during and after the outage', () => {
    expectAnswered(load, (_, o) => o === '200')
    const during = load.exchanges.filter((e) => e.sentAt >= t.down && e.answeredAt <= t.upAsked)
    expect(during.length).toBeGreaterThan(20)
  })

  it('keeps /readyz 200 during the outage: the spool is writable', () => {
    const during = ready.samples.filter((s) => s.at >= t.down && s.at <= t.upAsked)
    expect(during.length).toBeGreaterThan(10)
    const notReady = during.filter((s) => s.r?.status !== 200)
    expect(notReady.slice(0, 3)).toEqual([])
    expect(during.some((s) => s.r?.kafka === false && (s.r.spool?.entries ?? 0) > 0)).toBe(true)
  })

  it('drains the spool once the broker is back: adgate_spool_events 0, replayed > 0', () => {
    expect(m.spooledEventsAtEnd).toBeGreaterThan(0)
    expect(m.spoolEventsAfterDrain).toBe(0)
    expect(m.replayed).toBeGreaterThanOrEqual(m.spooledEventsAtEnd)
    // and new requests go straight to Kafka again
    expect(m.toKafkaAfterDrain).toBeGreaterThan(0)
  })

  it('every acknowledged event is in Kafka', () => {
    expectNoAckedLoss(load, down)
    expect(fig.missing).toBe(0)
  })

  it('exits 0 on SIGTERM', () => {
    expect(exitCode).toBe(0)
  })
})
