// `adgate all` without KAFKA_BROKERS: gateway → local spool → in-process correlator → DuckDB,
// through the real CLI. A kill -9 in the middle loses nothing acknowledged and counts nothing twice.
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Encoding } from '../../decoders/result.js'
import { EVENT_INFO, EVENT_TYPES, type EventType } from '../../events/catalog.js'
import { CONTENT_TYPE, encodeEvents } from '../../generator/encode.js'
import type { Event } from '../../generator/events.js'
import { generateFunnel } from '../../generator/funnel.js'
import { spawnCli } from '../support/cli-process.js'

const PRIMARY: Record<EventType, Encoding> = {
  bid: 'avro',
  impression: 'json',
  click: 'csv',
  conversion: 'csv',
}

interface Running {
  child: ChildProcess
  gateway: string
  correlator: string
  exited: Promise<number | NodeJS.Signals>
}

async function startAll(dataDir: string): Promise<Running> {
  const all = spawnCli('all', {
    ADGATE_DATA_DIR: dataDir,
    PORT: '0',
    ADGATE_CORRELATOR_PORT: '0',
    HOST: '127.0.0.1',
    ADGATE_WORKERS: '1',
  })
  const ports = [await all.listening('gateway'), await all.listening('correlator')]
  expect(all.output()).toMatch(/"mode":"embedded/)
  return {
    child: all.child,
    gateway: `http://127.0.0.1:${ports[0]}`,
    correlator: `http://127.0.0.1:${ports[1]}`,
    exited: all.exited,
  }
}

async function post(base: string, type: EventType, events: Event[]): Promise<void> {
  if (events.length === 0) return
  const res = await fetch(`${base}/v1/${EVENT_INFO[type].route}`, {
    method: 'POST',
    body: encodeEvents(type, events, PRIMARY[type]),
    headers: { 'content-type': CONTENT_TYPE[PRIMARY[type]] },
  })
  expect(res.status, await res.text()).toBe(200)
}

interface Row {
  bids: number
  impressions: number
  clicks: number
  conversions: number
}

async function totals(base: string): Promise<Row> {
  const res = await fetch(`${base}/v1/stats?granularity=hour`)
  const rows = (await res.json()) as Row[]
  const sum: Row = { bids: 0, impressions: 0, clicks: 0, conversions: 0 }
  for (const r of rows) for (const k of Object.keys(sum) as (keyof Row)[]) sum[k] += r[k]
  return sum
}

/** Poll until the totals equal what was posted (the correlator works asynchronously). */
async function settle(base: string, expected: Row): Promise<Row> {
  let last: Row | undefined
  for (let i = 0; i < 300; i++) {
    last = await totals(base)
    if (JSON.stringify(last) === JSON.stringify(expected)) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  return last!
}

describe('embedded single-machine mode (adgate all, no Kafka)', () => {
  it('counts every posted event exactly once, across a kill -9 and restart', {
    timeout: 180_000,
  }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'adgate-embedded-'))
    const funnel = generateFunnel({ seed: 77, bids: 4000 })
    const expected: Row = {
      bids: funnel.bid.length,
      impressions: funnel.impression.length,
      clicks: funnel.click.length,
      conversions: funnel.conversion.length,
    }
    // Bids only count with a campaign; the rows are per campaign.
    expected.bids = funnel.bid.filter((b) => b.campaign_id !== null).length
    expect(expected.clicks).toBeGreaterThan(0)

    let run = await startAll(dataDir)
    // First half of every type, then kill -9 before the correlator can have caught up.
    const half = (type: EventType) => Math.floor(funnel[type].length / 2)
    for (const type of EVENT_TYPES) await post(run.gateway, type, funnel[type].slice(0, half(type)))
    run.child.kill('SIGKILL')
    await run.exited

    run = await startAll(dataDir)
    for (const type of EVENT_TYPES) await post(run.gateway, type, funnel[type].slice(half(type)))
    expect(await settle(run.correlator, expected)).toEqual(expected)

    run.child.kill('SIGTERM')
    expect(await run.exited).toBe(0)
  })
})
