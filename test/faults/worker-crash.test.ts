// Fault scenario 3: a decoder worker thread dies (or hangs) in the middle of a task, under load.
// The requests of that task get 503 WORKER_FAILED (nothing of them accepted), every other request
// 200, the gateway replaces the thread and carries on, and every acknowledged event is in Kafka.
// Also: a delivery Kafka never acknowledges (POST /_faults/kafka) is made durable in the spool
// instead, still answered 200, and replayed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningGateway } from '../support/gateway.js'
import { Load, waitFor } from './support/load.js'
import { metric, readyz, waitDrained } from './support/observe.js'
import { kafkaAvailable, logTail, Rig } from './support/rig.js'
import { expectAnswered, expectNoAckedLoss, type Recorded, Recording } from './support/verify.js'

const FAULTS = ['crash', 'crash', 'hang', 'crash', 'kafka'] as const
const DECODE_TIMEOUT_MS = 1500

describe.skipIf(!kafkaAvailable)('fault injection: 3. a worker thread dies mid-task under load', () => {
  // Every fault file's state: the rig, its gateway, the load and what was recorded.
  let rig: Rig
  let gw: RunningGateway
  let load: Load
  let r: Recorded
  let aliveAfterFaults = false
  let readyAfter = 0
  let spooledByKafkaFault = 0
  const armed: { fault: string; at: number }[] = []
  Recording.reportAfterAll(() => r)

  const workerFailed = () => load.exchanges.filter((e) => e.status === 503)

  beforeAll(async () => {
    rig = await Rig.acquire()
    gw = await rig.gateway({
      ADGATE_FAULT_INJECTION: 'on',
      ADGATE_WORKERS: '2',
      ADGATE_DECODE_TIMEOUT_MS: String(DECODE_TIMEOUT_MS),
    })
    const recording = await Recording.begin(rig, 'worker-crash')
    load = new Load(gw.url, { run: recording.run, clients: 3, pauseMs: 20, maxEvents: 8000 })
    const detail = () => `${JSON.stringify({ armed, outcomes: load.outcomes() })}\n${logTail(gw)}`
    load.start()
    try {
      await load.waitAcked('30 acknowledged requests', 30, 0, 20_000, detail)
      for (const fault of FAULTS) {
        const at = Date.now()
        armed.push({ fault, at })
        if (fault === 'kafka') {
          const spooled = await metric(gw.url, 'adgate_deliveries_total{destination="spool"}', 0)
          await fetch(`${gw.url}/_faults/kafka`, { method: 'POST' }).then((r) => r.text())
          await waitFor(
            'the delivery Kafka failed to be spooled',
            async () => (await metric(gw.url, 'adgate_deliveries_total{destination="spool"}', 0)) > spooled,
            15_000,
            detail,
          )
          spooledByKafkaFault =
            (await metric(gw.url, 'adgate_deliveries_total{destination="spool"}', 0)) - spooled
        } else {
          const before = workerFailed().length
          const res = await fetch(`${gw.url}/_faults/worker?mode=${fault}`, { method: 'POST' })
          expect(res.status).toBe(200)
          await res.text()
          await waitFor(`a 503 for the ${fault}ed task`, () => workerFailed().length > before, 15_000, detail)
        }
        await load.waitAcked(`10 acknowledged requests after the ${fault}`, 10, at, 20_000, detail)
      }
      aliveAfterFaults = gw.process.exitCode === null
    } finally {
      await load.stop()
    }
    await waitDrained(gw.url, 30_000, detail)
    readyAfter = (await readyz(gw.url)).status
    r = await recording.end(load, [gw], () => ({
      faults: FAULTS.join(','),
      worker_failed_requests: workerFailed().length,
      spooled_by_kafka_fault: spooledByKafkaFault,
    }))
  }, 180_000)

  afterAll(async () => {
    await rig?.release()
  }, 60_000)

  it('answers 503 WORKER_FAILED to the requests of each broken task, 200 to all others', () => {
    expectAnswered(load, (_, o) => o === '200' || o === '503 WORKER_FAILED')
    expect(workerFailed().length).toBeGreaterThanOrEqual(FAULTS.filter((f) => f !== 'kafka').length)
  })

  it('a hung task is given up after ADGATE_DECODE_TIMEOUT_MS, not waited for forever', () => {
    const hangAt = armed.find((a) => a.fault === 'hang')!.at
    const hung = workerFailed().filter((e) => e.sentAt >= hangAt)
    expect(hung.length).toBeGreaterThan(0)
    // generous: the timeout plus a lot of scheduling slack on a shared machine
    for (const e of hung) expect(e.answeredAt - e.sentAt).toBeLessThan(DECODE_TIMEOUT_MS + 10_000)
  })

  it('accepts nothing of a failed request: none of its events reach Kafka', () => {
    const inKafka = workerFailed()
      .flatMap((e) => e.ids)
      .filter((id) => r.down.copies.has(id))
    expect(inKafka).toEqual([])
  })

  it('a delivery Kafka never acknowledged is spooled and still answered 200', () => {
    expect(spooledByKafkaFault).toBeGreaterThan(0)
  })

  it('the gateway survives: still running, /readyz 200, exits 0 on SIGTERM', () => {
    expect(aliveAfterFaults).toBe(true)
    expect(readyAfter).toBe(200)
    expect(r.exitCode).toBe(0)
  })

  it('every acknowledged event is in Kafka', () => {
    expectNoAckedLoss(load, r.down)
    expect(r.fig.missing).toBe(0)
  })
})
