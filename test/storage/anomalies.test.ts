// The correlator's anomaly detector writes its flags to the anomalies table of every SQL sink:
// the same rows in PostgreSQL (real server) and DuckDB for the same input, the labelled stale
// source among them, counted per batch for the metrics; a flag detected again rewrites its row.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { BatchOutput } from '../../correlator/output.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import type { Storage } from '../../correlator/storage.js'
import { generateSourcedTraffic } from '../../generator/anomalies.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { MemoryStorage } from '../../storage/memory.js'
import { PostgresStorage } from '../../storage/postgres.js'
import { ArraySource, runToEnd } from '../support/array-source.js'
import { toLogs } from '../support/funnel-records.js'
import { freshDatabase } from '../support/postgres.js'

const url = inject('postgresUrl')
const dir = mkdtempSync(join(tmpdir(), 'adgate-anomalies-'))
const BUCKET = 5 * 60_000
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const { events, labels } = generateSourcedTraffic({
  seed: 31,
  bids: 60_000,
  spanMs: 2 * 3_600_000,
  start: Date.UTC(2026, 10, 1),
  sources: ['ssp-a', 'ssp-b', 'ssp-c', 'ssp-d'],
  anomalies: ['click_flood', 'stale_source'],
})
// One partition: the detector sees every event, as a single correlator instance does.
const logs = toLogs(events, 1)

async function correlate(storage: Storage, seed: number): Promise<string[]> {
  const flagged: string[] = []
  const c = new Correlator(
    {
      rules: DEFAULT_RULES,
      storage,
      source: new ArraySource(logs, seed, 1),
      checkpointMs: 1e9,
      idleMs: 1e9,
      writeEveryRecords: 10_000,
      lingerMs: 1e9,
      anomalies: { bucketMs: BUCKET, closeAfterMs: 2 * BUCKET },
      onBatch: (s) => flagged.push(...s.anomalies),
    },
    1,
  )
  await runToEnd(c)
  return flagged
}

const rowsOf = (rows: Record<string, unknown>[]) =>
  rows
    .map((r) => ({
      metric: String(r.metric),
      subject: String(r.subject),
      bucket: Number(r.bucket),
      observed: Number(r.observed),
      low: Number(r.expected_low),
      high: Number(r.expected_high),
    }))
    .sort(
      (a, b) => a.bucket - b.bucket || a.subject.localeCompare(b.subject) || a.metric.localeCompare(b.metric),
    )

const SELECT = 'SELECT metric, subject, bucket, observed, expected_low, expected_high FROM anomalies'

describe('the anomalies table', () => {
  it('holds the same flags in PostgreSQL, DuckDB and memory; a flag detected again is rewritten, not added', async () => {
    const memory = new MemoryStorage()
    const counted = await correlate(memory, 5)
    const expected = rowsOf([...memory.anomalies.values()].map((a) => ({ ...a })))
    expect(counted.length).toBe(expected.length)
    const stale = labels.find((l) => l.kind === 'stale_source')!
    expect(expected.some((r) => r.metric === 'staleness' && r.subject === stale.subject)).toBe(true)
    for (const r of expected) expect(r.observed < r.low || r.observed > r.high, JSON.stringify(r)).toBe(true)

    const db = await freshDatabase(url)
    const pg = await PostgresStorage.open(db.url)
    const duck = await DuckDbStorage.open(join(dir, 'a.duckdb'))
    try {
      await correlate(pg, 5)
      await correlate(duck, 5)
      expect(rowsOf(await pg.query(SELECT))).toEqual(expected)
      expect(rowsOf(await duck.query(SELECT))).toEqual(expected)
      // Detected again (as after a restart, whose baselines learn anew): rewritten, not added.
      for (const storage of [pg, duck]) {
        const again = new BatchOutput()
        again.anomalies.push({ ...[...memory.anomalies.values()][0]!, observed: 12345 })
        await storage.write({ output: again, positions: [], expected: new Map(), checkpoints: [] })
        const rows = rowsOf(await (storage as PostgresStorage | DuckDbStorage).query(SELECT))
        expect(rows.length).toBe(expected.length)
        expect(rows.filter((r) => r.observed === 12345).length).toBe(1)
      }
    } finally {
      await pg.close()
      await duck.close()
      await db.drop()
    }
  }, 180_000)
})
