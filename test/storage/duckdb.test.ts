import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Correlator } from '../../correlator/correlator.js'
import { BatchOutput } from '../../correlator/output.js'
import { DEFAULT_RULES, type JoinRules } from '../../correlator/rules.js'
import { StaleOwnerError } from '../../correlator/storage.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { ArraySource, runToEnd } from '../support/array-source.js'
import { allRecords, funnelEvents, PARTITIONS, toLogs } from '../support/funnel-records.js'
import { expectedRawKeys, storedRawKeys } from '../support/raw-tables.js'
import { reference } from '../support/reference.js'
import { sqlTables } from '../support/tables.js'

const RULES: JoinRules = { ...DEFAULT_RULES, graceMs: 2 * 60_000 }
const dir = mkdtempSync(join(tmpdir(), 'adgate-duckdb-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('DuckDB storage', () => {
  it('holds exactly the reference tables after a run with crashes, and a replay from 0 changes nothing', async () => {
    const logs = toLogs(
      funnelEvents({ seed: 11, bids: 6000, duplicates: 0.05, outOfOrder: 0.1, late: 0.02, botClicks: 0.2 }),
    )
    const expected = await reference(allRecords(logs), RULES)
    const path = join(dir, 'run.duckdb')
    let committed: Map<string, number> | undefined
    let t = 0
    for (const [i, stopAfter] of [7, 20, Number.POSITIVE_INFINITY].entries()) {
      // A new process each time: the file is reopened, state comes back from its checkpoints.
      const storage = await DuckDbStorage.open(path)
      const source = new ArraySource(logs, 100 + i, PARTITIONS, stopAfter, committed)
      const c = new Correlator(
        { rules: RULES, storage, source, checkpointMs: 5, idleMs: 1e9, now: () => t++, rawEvents: true },
        PARTITIONS,
      )
      await runToEnd(c)
      await storage.close()
      committed = source.committed
    }
    const storage = await DuckDbStorage.open(path)
    const tables = await sqlTables((sql) => storage.query(sql))
    expect(tables).toEqual(expected)
    // Raw tables: every record once, crashes and their re-reads notwithstanding.
    const rawKeys = expectedRawKeys(logs)
    expect(await storedRawKeys((sql) => storage.query(sql))).toEqual(rawKeys)

    const replay = new ArraySource(logs, 999, PARTITIONS)
    const again = new Correlator(
      {
        rules: RULES,
        storage,
        source: replay,
        checkpointMs: 5,
        idleMs: 1e9,
        now: () => t++,
        rawEvents: true,
      },
      PARTITIONS,
    )
    await again.start()
    await again.stop()
    expect(replay.batches).toBeGreaterThan(10)
    expect(await sqlTables((sql) => storage.query(sql))).toEqual(expected)
    expect(await storedRawKeys((sql) => storage.query(sql))).toEqual(rawKeys)

    const stats = await storage.stats({ granularity: 'hour', campaign: 'cmp-001' })
    expect(stats.length).toBeGreaterThan(0)
    const h = expected.hour.filter((r) => r.campaign_id === 'cmp-001')
    expect(
      stats.map((s) => [s.bucket, s.bids, s.wins, s.impressions, s.clicks, s.conversions, s.spend_micros]),
    ).toEqual(
      h.map((r) => [
        new Date(r.bucket as number).toISOString(),
        r.bids,
        r.wins,
        r.impressions,
        r.clicks,
        r.conversions,
        r.spend_micros,
      ]),
    )
    await storage.close()
  })

  it('a write from a stale owner fails and changes nothing', async () => {
    const storage = await DuckDbStorage.open(join(dir, 'fence.duckdb'))
    const out = new BatchOutput()
    out.count(1, 0, 'c1', 0, 0, 5)
    await storage.write({
      output: out,
      positions: [{ topic: 'adgate.bids', partition: 0, offset: '10' }],
      expected: new Map([['adgate.bids:0', null]]),
      checkpoints: [],
    })
    await expect(
      storage.write({
        output: out,
        positions: [{ topic: 'adgate.bids', partition: 0, offset: '20' }],
        expected: new Map([['adgate.bids:0', '5']]),
        checkpoints: [],
      }),
    ).rejects.toBeInstanceOf(StaleOwnerError)
    expect(await storage.query('SELECT sum(bids)::INT AS b FROM agg_minute')).toEqual([{ b: 5 }])
    expect((await storage.load(0, ['adgate.bids'])).positions.get('adgate.bids:0')).toBe('10')
    await storage.close()
  })
})
