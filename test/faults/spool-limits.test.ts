// Fault scenarios 4 and 5: the spool runs out of room during a broker outage, by its own bound
// (ADGATE_SPOOL_MAX_BYTES) or because the disk under ADGATE_DATA_DIR is full (a small tmpfs).
// Either way: requests that cannot be made durable get 503 + Retry-After with nothing accepted,
// never a 200; the gateway survives; when the broker returns the spool drains, 200s come back,
// and every acknowledged event is in Kafka.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningGateway } from '../support/gateway.js'
import { type Exchange, Load, sleep, waitFor } from './support/load.js'
import { type Readiness, ReadyPoller, readyz, waitDrained } from './support/observe.js'
import { kafkaAvailable, logTail, type Rig, rigPerBlock, scenarioDetail } from './support/rig.js'
import { expectAnswered, expectNoAckedLoss, type Recorded, Recording } from './support/verify.js'

/** How long the load keeps running against a spool that is out of room. */
const FULL_FOR_MS = 2000
/** Generous: a drain takes about a second here. */
const DRAIN_TIMEOUT_MS = 30_000

interface Filled extends Recorded {
  load: Load
  ready: ReadyPoller
  /** drained: 0 when the spool did not drain within DRAIN_TIMEOUT_MS */
  t: { down: number; firstRefusal: number; upAsked: number; up: number; drained: number }
  /** /readyz when the drain was given up on */
  undrained: Readiness | null
  gw: RunningGateway
  aliveWhileFull: boolean
  readyAfter: number
}

const notDurable = (e: Exchange) => e.status === 503

/**
 * Load; stop the broker; keep loading until requests are refused (the spool is out of room) and a
 * while longer; start the broker; wait for the drain and for 200s again; read everything back.
 */
async function fillDuringOutage(
  rig: Rig,
  scenario: string,
  env: Record<string, string>,
  extra: (r: Omit<Filled, keyof Recorded>) => Record<string, unknown> = () => ({}),
): Promise<Filled> {
  const gw = await rig.gateway(env)
  const recording = await Recording.begin(rig, scenario)
  // slow while the broker is up, fast while it is down (to fill the spool in a few seconds)
  const load = new Load(gw.url, {
    run: recording.run,
    clients: 3,
    eventsPerRequest: 20,
    pauseMs: 150,
    maxEvents: 10_000,
  })
  const ready = new ReadyPoller(() => gw.url, 100)
  const t = { down: 0, firstRefusal: 0, upAsked: 0, up: 0, drained: 0 }
  const detail = scenarioDetail(t, load, gw)
  let aliveWhileFull = false
  let undrained: Readiness | null = null
  load.start()
  try {
    await load.waitAcked('20 acknowledged requests', 20, 0, 20_000, detail)
    try {
      // The outage begins when the stop is asked for: requests sent while the broker shuts down
      // (0.5-1.2 s) already meet a broker going away, and may be spooled and refused.
      t.down = Date.now()
      await rig.broker.stop()
      load.pauseMs = 5
      await waitFor('a refusal (the spool is out of room)', () => load.answered(notDurable), 60_000, detail)
      t.firstRefusal = Math.min(...load.exchanges.filter(notDurable).map((e) => e.answeredAt))
      await sleep(FULL_FOR_MS)
      load.pauseMs = 150
      aliveWhileFull = gw.process.exitCode === null && (await fetch(`${gw.url}/healthz`)).status === 200
    } finally {
      t.upAsked = Date.now()
      await rig.broker.start()
      t.up = Date.now()
    }
    try {
      await waitDrained(gw.url, DRAIN_TIMEOUT_MS, detail)
      t.drained = Date.now()
    } catch {
      undrained = await readyz(gw.url) // checked (and shown) by the tests
    }
    if (t.drained > 0)
      await load.waitAcked('20 requests acknowledged after the drain', 20, t.drained, 20_000, detail)
  } finally {
    await load.stop()
    await ready.stop()
  }
  const readyAfter = (await readyz(gw.url)).status
  const partial = { load, ready, t, gw, aliveWhileFull, readyAfter, undrained }
  const recorded = await recording.end(load, [gw], () => ({
    refused_requests: load.exchanges.filter(notDurable).length,
    acked_while_refusing: load
      .acked()
      .filter((e) => e.answeredAt >= t.firstRefusal && e.answeredAt <= t.upAsked).length,
    drain_ms: t.drained > 0 ? t.drained - t.up : null,
    ...extra(partial),
  }))
  return { ...partial, ...recorded }
}

/** The checks both ways of running out of room share. */
function sharedChecks(get: () => Filled): void {
  it('answers 200 or 503 NOT_DURABLE (Retry-After, nothing accepted): never a 2xx it cannot keep, never a hang', () => {
    const r = get()
    expectAnswered(r.load, (_, o) => o === '200' || o === '503 NOT_DURABLE')
    expect(r.load.exchanges.filter(notDurable).length).toBeGreaterThan(0)
    // refusals only while the broker was down
    const early = r.load.exchanges.filter((e) => notDurable(e) && e.sentAt < r.t.down)
    expect(early).toEqual([])
  })

  it('the gateway survives running out of room', () => {
    const r = get()
    expect(r.aliveWhileFull, logTail(r.gw)).toBe(true)
    expect(r.exitCode).toBe(0)
  })

  it('after the broker returns the spool drains and requests get 200 again', () => {
    const r = get()
    expect(r.undrained, `not drained within ${DRAIN_TIMEOUT_MS} ms\n${logTail(r.gw, 5)}`).toBeNull()
    expect(r.load.acked().filter((e) => e.sentAt > r.t.drained).length).toBeGreaterThan(0)
    expect(r.readyAfter).toBe(200)
  })

  it('every acknowledged event is in Kafka', () => {
    const r = get()
    expectNoAckedLoss(r.load, r.down)
    expect(r.fig.missing).toBe(0)
  })
}

describe.skipIf(!kafkaAvailable)('fault injection: the spool runs out of room during an outage', () => {
  const rig = rigPerBlock()

  describe('4. spool full (ADGATE_SPOOL_MAX_BYTES=1MiB)', () => {
    let r: Filled
    Recording.reportAfterAll(() => r)
    beforeAll(async () => {
      r = await fillDuringOutage(rig(), 'spool-full', { ADGATE_SPOOL_MAX_BYTES: '1MiB' }, (p) => ({
        spool_max_bytes: 1 << 20,
        spool_peak_bytes: Math.max(0, ...p.ready.samples.map((s) => s.r?.spool?.bytes ?? 0)),
      }))
    }, 180_000)

    sharedChecks(() => r)

    it('never holds more than ADGATE_SPOOL_MAX_BYTES', () => {
      for (const s of r.ready.samples) if (s.r?.spool) expect(s.r.spool.bytes).toBeLessThanOrEqual(1 << 20)
    })

    it('/readyz answers 503 (spool full) while it refuses, and 200 again after the drain', () => {
      const whileFull = r.ready.samples.filter((s) => s.at >= r.t.firstRefusal && s.at <= r.t.upAsked)
      expect(whileFull.length).toBeGreaterThan(5)
      expect(
        whileFull.some((s) => s.r?.status === 503 && s.r.spool?.full === true),
        JSON.stringify(whileFull.slice(-3)),
      ).toBe(true)
    })
  })

  describe.skipIf(!canMountTmpfs())(
    '5. disk full under the spool (2 MiB tmpfs as ADGATE_DATA_DIR, spool bound 1GiB)',
    () => {
      let r: Filled
      let mountPoint: string | null = null
      Recording.reportAfterAll(() => r)
      beforeAll(async () => {
        mountPoint = mountTmpfs('2m')
        const dataDir = join(mountPoint, 'data')
        mkdirSync(dataDir)
        r = await fillDuringOutage(
          rig(),
          'disk-full',
          { ADGATE_DATA_DIR: dataDir, ADGATE_SPOOL_MAX_BYTES: '1GiB' },
          (p) => ({
            tmpfs_bytes: 2 << 20,
            refusal_reason: p.load.exchanges.find(notDurable)?.body?.error,
          }),
        )
      }, 180_000)
      afterAll(async () => {
        await rig().killGateways() // after a failure one may still hold files on the tmpfs
        if (mountPoint !== null) unmount(mountPoint)
      })

      sharedChecks(() => r)

      it('refuses because the disk is full, long before the spool bound', () => {
        const body = r.load.exchanges.find(notDurable)?.body
        expect(JSON.stringify(body)).toMatch(/disk is full|SQLITE_FULL|ENOSPC|could not write/i)
      })
    },
  )
})

let mountable: boolean | undefined

/**
 * Whether a tmpfs can be mounted here (root), probed once. When it cannot, the disk-full scenario
 * skips with a loud warning; in CI (CI=true) that is an error instead.
 */
function canMountTmpfs(): boolean {
  if (mountable !== undefined) return mountable
  let why = ''
  try {
    unmount(mountTmpfs('64k'))
    mountable = true
  } catch (err) {
    why = (err as Error).message
    mountable = false
  }
  if (!mountable) {
    if (process.env.CI === 'true') throw new Error(`disk-full fault scenario: ${why}`)
    const bar = '!'.repeat(78)
    console.warn(`\n${bar}\n!! disk-full fault scenario SKIPPED: ${why}\n${bar}\n`)
  }
  return mountable
}

/** Mount a tmpfs of `size` on a new temporary directory (root only). */
function mountTmpfs(size: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'adgate-diskfull-'))
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' })
  if (r.status === 0) return dir
  rmSync(dir, { recursive: true, force: true })
  throw new Error(`cannot mount a tmpfs (${r.error?.message ?? r.stderr.trim()}); it needs root`)
}

function unmount(dir: string): void {
  const r = spawnSync('umount', [dir], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`umount ${dir} failed: ${r.stderr}`)
  rmSync(dir, { recursive: true, force: true })
}
