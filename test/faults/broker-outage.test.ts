// Fault scenario 2: the (private) broker is stopped for ~30 s under load with the spool on.
// Requests keep getting 200 (durable in the spool), /readyz stays 200 (the spool is writable);
// once the broker is back the spool drains to zero and every acknowledged event is in Kafka.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningGateway } from '../support/gateway.js'
import { Load, sleep } from './support/load.js'
import { metric, ReadyPoller, waitDrained } from './support/observe.js'
import { kafkaAvailable, Rig, scenarioDetail } from './support/rig.js'
import { expectAnswered, expectNoAckedLoss, type Recorded, Recording } from './support/verify.js'

const OUTAGE_MS = 30_000

describe.skipIf(!kafkaAvailable)('fault injection: 2. broker stopped for 30 s under load, spool on', () => {
  // Every fault file's state: the rig, its gateway, the load and what was recorded.
  let rig: Rig
  let gw: RunningGateway
  let load: Load
  let ready: ReadyPoller
  let r: Recorded
  const t = { down: 0, upAsked: 0, up: 0, drained: 0 }
  const m = { spooledEventsAtEnd: 0, spoolEventsAfterDrain: -1, replayed: 0, toKafkaAfterDrain: 0 }
  Recording.reportAfterAll(() => r)

  beforeAll(async () => {
    rig = await Rig.acquire()
    gw = await rig.gateway()
    const recording = await Recording.begin(rig, 'broker-outage')
    // ~2 clients x 10 events every ~150 ms: about 6k events over the whole scenario
    load = new Load(gw.url, { run: recording.run, clients: 2, pauseMs: 150, maxEvents: 10_000 })
    const detail = scenarioDetail(t, load, gw)
    ready = new ReadyPoller(() => gw.url, 250)
    load.start()
    try {
      await load.waitAcked('20 acknowledged requests', 20, 0, 20_000, detail)
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
      await load.waitAcked('20 requests acknowledged after the drain', 20, t.drained, 20_000, detail)
      m.toKafkaAfterDrain =
        (await metric(gw.url, 'adgate_deliveries_total{destination="kafka"}', 0)) - kafkaBefore
    } finally {
      await load.stop()
      await ready.stop()
    }
    r = await recording.end(load, [gw], () => ({
      outage_ms: t.up - t.down,
      acked_during_outage: load.acked().filter((e) => e.sentAt >= t.down && e.answeredAt <= t.upAsked).length,
      spooled_events_at_outage_end: m.spooledEventsAtEnd,
      drain_ms: t.drained - t.up,
      replayed_events: m.replayed,
    }))
  }, 240_000)

  afterAll(async () => {
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
    expectNoAckedLoss(load, r.down)
    expect(r.fig.missing).toBe(0)
  })

  it('exits 0 on SIGTERM', () => {
    expect(r.exitCode).toBe(0)
  })
})
