// Fault scenarios 1 and 6: the gateway dies (kill -9) or is stopped (SIGTERM) under load while the
// broker is down and its spool holds acknowledged events; restarted on the same ADGATE_DATA_DIR
// with the broker back, it replays the spool and every event acknowledged before is in Kafka.
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { RunningGateway } from '../support/gateway.js'
import { type Load, Load as LoadRecorder, waitFor } from './support/load.js'
import { waitDrained, waitSpooled } from './support/observe.js'
import { kafkaAvailable, logTail, type Rig, rigPerBlock } from './support/rig.js'
import { expectAnswered, expectNoAckedLoss, type Recorded, Recording } from './support/verify.js'

interface Restarted extends Recorded {
  load: Load
  t: { brokerDown: number; fault: number; brokerUp: number; restarted: number }
  /** entries the restarted gateway found in its spool */
  spooledAtRestart: number
  first: RunningGateway
  firstExit: number | null
  firstSignal: NodeJS.Signals | null
  /** exitCode: the second one's */
  second: RunningGateway
  /** what the fault callback saw */
  observed: Record<string, unknown>
}

const SPOOLED_AT_RESTART = /"entries":(\d+)[^\n]*spool holds batches from before/
const spooledAtRestart = (gw: RunningGateway) => Number(SPOOLED_AT_RESTART.exec(gw.logs())?.[1] ?? 0)

/**
 * Load against gateway #1; stop the broker; once the spool holds data (and kept acknowledging a
 * while), apply `fault` to gateway #1 with the load still running; start the broker and gateway #2
 * on the same data dir; wait until the spool drained and #2 answered 200s; read everything back.
 */
async function crashAndRestart(
  rig: Rig,
  scenario: string,
  fault: (gw: RunningGateway, dataDir: string) => Promise<Record<string, unknown>>,
): Promise<Restarted> {
  const dataDir = rig.dataDir()
  const env = { ADGATE_DATA_DIR: dataDir }
  const first = await rig.gateway(env)
  const recording = await Recording.begin(rig, scenario)
  const load = new LoadRecorder(first.url, { run: recording.run, clients: 4, pauseMs: 10, maxEvents: 8000 })
  const t = { brokerDown: 0, fault: 0, brokerUp: 0, restarted: 0 }
  let second: RunningGateway | undefined
  let observed: Record<string, unknown> = {}
  let drainMs = 0
  const detail = () =>
    `${JSON.stringify({ t, outcomes: load.outcomes() })}\n#1:\n${logTail(first)}${second ? `\n#2:\n${logTail(second)}` : ''}`
  load.start()
  try {
    await load.waitAcked('30 acknowledged requests from Kafka', 30, 0, 20_000, detail)
    await rig.broker.stop()
    t.brokerDown = Date.now()
    await waitSpooled(first.url, 20, 20_000, detail)
    await load.waitAcked('30 more requests acknowledged from the spool', 30, t.brokerDown, 20_000, detail)
    // Mid-task: strike while requests are in flight (being decoded, spooled, fsynced).
    await waitFor(
      '2 requests in flight',
      () => load.exchanges.filter((e) => e.answeredAt === 0).length >= 2,
      10_000,
      detail,
    )
    t.fault = Date.now()
    observed = await fault(first, dataDir)
    load.target = null // nobody listens until the restart
    await rig.broker.start()
    t.brokerUp = Date.now()
    second = await rig.gateway(env)
    t.restarted = Date.now()
    load.target = second.url
    drainMs = await waitDrained(second.url, 60_000, detail)
    await load.waitAcked('30 requests acknowledged by the restarted gateway', 30, t.restarted, 20_000, detail)
  } finally {
    await load.stop()
  }
  const recorded = await recording.end(load, [first, second], () => ({
    spooled_entries_at_restart: spooledAtRestart(second),
    drain_after_restart_ms: drainMs,
    requests_cut_by_fault: load.exchanges.filter(
      (e) => e.target === 0 && e.error !== null && e.answeredAt >= t.fault,
    ).length,
    ...observed,
  }))
  return {
    ...recorded,
    load,
    t,
    spooledAtRestart: spooledAtRestart(second),
    first,
    firstExit: first.process.exitCode,
    firstSignal: first.process.signalCode,
    second,
    observed,
  }
}

/** An exchange sent to gateway #1 that got no answer because it died or closed its connections. */
const cutByFault = (r: Restarted) => (e: { target: number; error: string | null; answeredAt: number }) =>
  e.target === 0 && e.error !== null && !e.error.startsWith('TimeoutError') && e.answeredAt >= r.t.fault

describe.skipIf(!kafkaAvailable)('fault injection: the gateway dies or stops while spooling', () => {
  const rig = rigPerBlock()

  describe('1. kill -9 mid-load while spooling, restart on the same data dir', () => {
    let r: Restarted
    beforeAll(async () => {
      r = await crashAndRestart(rig(), 'kill-9', async (gw) => {
        await gw.stop('SIGKILL')
        return {}
      })
    }, 180_000)
    Recording.reportAfterAll(() => r)

    it('answers 200 to every request, except those cut by the kill (no answer at all)', () => {
      expectAnswered(r.load, (e, o) => o === '200' || cutByFault(r)(e))
    })

    it('the spool held acknowledged events at the kill, and the restarted gateway found them', () => {
      expect(r.firstSignal).toBe('SIGKILL')
      expect(r.spooledAtRestart).toBeGreaterThan(0)
      expect(
        r.load.acked().filter((e) => e.sentAt > r.t.brokerDown && e.sentAt < r.t.fault).length,
      ).toBeGreaterThan(0)
    })

    it('every event acknowledged (before the kill and after the restart) is in Kafka', () => {
      expectNoAckedLoss(r.load, r.down)
      expect(r.fig.missing).toBe(0)
    })

    it('the restarted gateway exits 0 on SIGTERM', () => {
      expect(r.exitCode).toBe(0)
    })
  })

  describe('6. SIGTERM mid-load while spooling: exit 0, spool closed cleanly, drained after restart', () => {
    let r: Restarted
    beforeAll(async () => {
      r = await crashAndRestart(rig(), 'sigterm', async (gw, dataDir) => {
        const exitCode = await gw.stop('SIGTERM')
        const wal = join(dataDir, 'spool', 'spool.sqlite-wal')
        return { exit_code: exitCode, wal_bytes_after_exit: existsSync(wal) ? statSync(wal).size : null }
      })
    }, 180_000)
    Recording.reportAfterAll(() => r)

    it('exits 0 after a graceful drain', () => {
      expect(r.firstExit, logTail(r.first)).toBe(0)
      expect(r.first.logs()).toMatch(/"unanswered":0[^\n]*"msg":"gateway stopped"/)
    })

    it('closes the spool cleanly: no write-ahead log left behind', () => {
      // SQLite's close checkpoints the WAL into the database and deletes it; a WAL left behind
      // means the spool was not closed (what a kill -9 leaves, recovered at the next open).
      expect(r.observed.wal_bytes_after_exit).toBeNull()
      expect(r.spooledAtRestart).toBeGreaterThan(0)
    })

    it('answers 200, 503 DRAINING, or nothing at all once draining: never a hang', () => {
      expectAnswered(
        r.load,
        // DRAINING is answered after the signal, whenever the request was sent (the gateway may
        // read a request sent just before it only once draining began).
        (e, o) => o === '200' || (o === '503 DRAINING' && e.answeredAt >= r.t.fault) || cutByFault(r)(e),
      )
    })

    it('every acknowledged event is in Kafka after the restart', () => {
      expectNoAckedLoss(r.load, r.down)
      expect(r.fig.missing).toBe(0)
    })
  })
})
