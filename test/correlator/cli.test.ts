// `adgate correlator` and `adgate query` as users run them (the compiled CLI from dist/), and the
// correlator's HTTP API served over a correlator fed from generated logs.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Admin } from '@platformatic/kafka'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { startCorrelator } from '../../cli/correlator.js'
import { loadConfig } from '../../config/config.js'
import { createLogger } from '../../config/logger.js'
import type { StatsRow } from '../../correlator/storage.js'
import { INTERNAL_TOPICS, SOURCE_TOPICS } from '../../correlator/topics.js'
import { ArraySource } from '../support/array-source.js'
import { spawnCli } from '../support/cli-process.js'
import { endOffsets } from '../support/consume.js'
import { funnelEvents, PARTITIONS, toLogs } from '../support/funnel-records.js'

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'adgate-cli-'))
const brokers = inject('kafkaBrokers')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The CLI as a child process; async, so this process can answer the child's HTTP requests. */
function adgate(
  args: string[],
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { env: { PATH: process.env.PATH, LOG_LEVEL: 'silent', ...env } },
      (err, stdout, stderr) => resolve({ status: err ? ((err.code as number) ?? 1) : 0, stdout, stderr }),
    )
  })
}

describe('correlator HTTP API and adgate query', () => {
  it('serves campaign stats, metrics and health from storage; adgate query --json prints the same rows', async () => {
    const file = join(dir, 'api.duckdb')
    const config = loadConfig({
      ADGATE_STORAGE: `duckdb:${file}`,
      ADGATE_CORRELATOR_PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
    })
    const logs = toLogs(funnelEvents({ seed: 51, bids: 4000, duplicates: 0.02 }))
    const source = new ArraySource(logs, 5, PARTITIONS)
    const running = await startCorrelator(config, createLogger('silent', 'test'), source, null)
    try {
      await running.done // the generated logs are finite: every batch is written
      const base = `http://127.0.0.1:${running.port}`
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' })
      const metrics = await (await fetch(`${base}/metrics`)).text()
      expect(metrics).toMatch(/^adgate_correlator_events_total [1-9]\d*$/m)
      expect(metrics).toMatch(/adgate_correlator_write_seconds_bucket/)
      expect(metrics).toMatch(
        /^adgate_correlator_joins_total\{join="impression_click",result="matched"\} [1-9]\d*$/m,
      )
      // Read to the end: every input partition that has records is listed, none behind.
      const lags = [...metrics.matchAll(/^adgate_correlator_partition_lag_records\{(.*)\} (\d+)$/gm)]
      expect(lags.length).toBe([...logs.values()].filter((log) => log.length > 0).length)
      expect(lags.length).toBeGreaterThan(PARTITIONS)
      expect(lags.filter((m) => m[2] !== '0')).toEqual([])

      const res = await fetch(
        `${base}/v1/campaigns/cmp-003/stats?granularity=minute&from=2026-11-01T00:00:00Z&to=${Date.UTC(2026, 10, 1, 0, 30)}`,
      )
      expect(res.status).toBe(200)
      const body = (await res.json()) as { campaign_id: string; granularity: string; rows: StatsRow[] }
      expect(body).toMatchObject({ campaign_id: 'cmp-003', granularity: 'minute' })
      expect(body.rows.length).toBeGreaterThan(5)
      expect(body.rows.length).toBeLessThanOrEqual(30)
      for (const r of body.rows) {
        expect(r.campaign_id).toBe('cmp-003')
        expect(r.bucket < '2026-11-01T00:30').toBe(true)
        if (r.impressions > 0) expect(r.ctr).toBeCloseTo(r.clicks_valid / r.impressions, 12)
        if (r.bids > 0) expect(r.win_rate).toBeCloseTo(r.wins / r.bids, 12)
      }
      const bad = await fetch(`${base}/v1/campaigns/cmp-003/stats?granularity=week`)
      expect(bad.status).toBe(400)
      expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('BAD_QUERY')

      // The file is held by the running process: adgate query asks its HTTP API.
      const env = { ADGATE_STORAGE: `duckdb:${file}`, ADGATE_CORRELATOR_PORT: String(running.port) }
      const viaApi = await adgate(['query', '--json', '--granularity', 'hour'], env)
      expect(viaApi.stderr).toBe('')
      const hourly = JSON.parse(viaApi.stdout) as StatsRow[]
      expect(hourly).toEqual(await running.storage.stats({ granularity: 'hour' }))
      await running.close()

      // Closed: adgate query opens the file itself, same answer.
      const direct = await adgate(['query', '--json', '--granularity', 'hour'], env)
      expect(JSON.parse(direct.stdout)).toEqual(hourly)
      // Declaration mirrored in cli/query.ts: listed here independently, as an oracle for its columns.
      for (const key of [
        'campaign_id',
        'bucket',
        'bids',
        'wins',
        'impressions',
        'clicks',
        'conversions',
        'spend_micros',
        'ctr',
        'cvr',
        'win_rate',
      ])
        expect(hourly[0]).toHaveProperty(key)
      const one = JSON.parse(
        (await adgate(['query', '--json', '--campaign', 'cmp-001'], env)).stdout,
      ) as StatsRow[]
      expect(one.length).toBeGreaterThan(0)
      expect(new Set(one.map((r) => r.campaign_id))).toEqual(new Set(['cmp-001']))
      const table = await adgate(['query'], env)
      expect(table.stdout.split('\n')[0]).toMatch(/^campaign_id\s+bucket\s+bids\s+wins/)
      expect((await adgate(['query', '--granularity', 'day'], env)).status).toBe(2)
    } finally {
      await running.close().catch(() => {})
    }
    // A 4000-bid funnel correlated in this process and five CLI processes: 58 s at load 23, near
    // the default 60 s (session 4); the work is bounded, so the budget is what load needs.
  }, 180_000)
})

describe.skipIf(brokers.length === 0)('adgate correlator', () => {
  it('starts against Kafka, answers /healthz, and stops cleanly on SIGTERM', async () => {
    // A fresh-clone CI run (0018cd3) timed out here with no word of where: each step that waits
    // on Kafka or the child is bounded and says what it waited for, with the child's output.
    let output = () => ''
    const step = <T>(what: string, work: Promise<T>, ms = 60_000): Promise<T> => {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not done in ${ms} ms\n${output()}`)), ms)
      })
      return Promise.race([work, late]).finally(() => clearTimeout(timer))
    }
    const group = `test-cli-${randomBytes(4).toString('hex')}`
    // The group starts at the topics' ends. A fresh group otherwise reads the shared broker's
    // adgate.* topics from their beginning: every other test's and benchmark's records (190 M
    // impressions on this machine in session 4). Working through that backlog made the start take
    // 6-32 s and the stop 0.1-15 s at load 21-26 (8 runs), and once in a fresh-clone CI run
    // (ca2c52b) the two passed this test's 60 s; what is checked here is a start and a clean stop.
    await step("committing the group at the topics' ends", startAtEnd(group))
    const correlator = spawnCli('correlator', {
      KAFKA_BROKERS: brokers.join(','),
      ADGATE_CORRELATOR_GROUP: group,
      ADGATE_CORRELATOR_PORT: '0',
      ADGATE_STORAGE: `duckdb:${join(dir, 'cli.duckdb')}`,
      HOST: '127.0.0.1',
    })
    const { child } = correlator
    output = correlator.output
    try {
      const port = await correlator.listening('correlator')
      expect(correlator.output()).toMatch(/"rekey":"kafka"/)
      const health = await step('GET /healthz', fetch(`http://127.0.0.1:${port}/healthz`), 10_000)
      expect(health.status).toBe(200)
      const sigtermAt = Date.now()
      child.kill('SIGTERM')
      const code = await step('the exit after SIGTERM', correlator.exited, 90_000)
      expect(code, `exit ${Date.now() - sigtermAt} ms after SIGTERM:\n${correlator.output()}`).toBe(0)
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      const admin = new Admin({ clientId: 'adgate-test', bootstrapBrokers: brokers })
      await step(
        'deleting the group',
        admin
          .deleteGroups({ groups: [group] })
          .catch(() => {})
          .finally(() => admin.close()),
        10_000,
      ).catch((err: unknown) => console.warn(String(err)))
    }
    // What is checked is a start and a clean stop, not their speed: a fresh-clone CI run at load 28
    // (15:12, beside four engineers' benches on the same broker) passed the 60 s default.
  }, 180_000)
})

/** Commits `group`'s offsets at the current end of every topic the correlator reads. */
async function startAtEnd(group: string): Promise<void> {
  const ends = await endOffsets(brokers, [...SOURCE_TOPICS, ...INTERNAL_TOPICS])
  const topics = [...ends]
    .filter(([, parts]) => parts.size > 0)
    .map(([name, parts]) => ({
      name,
      partitionOffsets: [...parts].map(([partition, offset]) => ({ partition, offset: BigInt(offset) })),
    }))
  const admin = new Admin({ clientId: 'adgate-test', bootstrapBrokers: brokers })
  try {
    await admin.alterConsumerGroupOffsets({ groupId: group, topics })
  } finally {
    await admin.close()
  }
}
