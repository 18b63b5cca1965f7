import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BatchOutput } from '../../correlator/output.js'
import { StaleOwnerError } from '../../correlator/storage.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { expectCrashSafeRun } from '../support/crash-safe-run.js'

const dir = mkdtempSync(join(tmpdir(), 'adgate-duckdb-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('DuckDB storage', () => {
  it('holds exactly the reference tables after a run with crashes, and a replay from 0 changes nothing', async () => {
    const { storage, expected, replay } = await expectCrashSafeRun(
      () => DuckDbStorage.open(join(dir, 'run.duckdb')),
      { seed: 11, stops: [7, 20], sourceSeed: 100 },
    )
    expect(replay.batches).toBeGreaterThan(10)

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
  }, 180_000) // three runs, a replay and their checks: over a minute at load 20, with DuckDB on one thread

  it('runs with a bounded memory limit and one thread unless told otherwise', async () => {
    const settings = "SELECT current_setting('memory_limit') AS memory, current_setting('threads') AS threads"
    const plain = await DuckDbStorage.open(join(dir, 'settings-default.duckdb'))
    expect(await plain.query(settings)).toEqual([{ memory: '1.0 GiB', threads: '1' }])
    await plain.close()
    const told = await DuckDbStorage.open(join(dir, 'settings-told.duckdb'), {
      memoryLimit: 256 << 20,
      threads: 2,
    })
    expect(await told.query(settings)).toEqual([{ memory: '256.0 MiB', threads: '2' }])
    await told.close()
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
