import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { blobValue, DuckDBInstance } from '@duckdb/node-api'
import { afterAll, describe, expect, it } from 'vitest'
import { BatchOutput } from '../../correlator/output.js'
import type { ImpressionRow } from '../../correlator/rows.js'
import { type Checkpoint, StaleOwnerError } from '../../correlator/storage.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { StateFiles } from '../../storage/state-files.js'
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
        checkpoints: [checkpoint(0, 'stale', '20')],
      }),
    ).rejects.toBeInstanceOf(StaleOwnerError)
    expect(await storage.query('SELECT sum(bids)::INT AS b FROM agg_minute')).toEqual([{ b: 5 }])
    const load = await storage.load(0, ['adgate.bids'])
    expect(load.positions.get('adgate.bids:0')).toBe('10')
    expect(load.checkpoint).toBeNull()
    expect(readdirSync(storage.states.dir)).toEqual([])
    await storage.close()
  })

  it('a first statement of an impression already stored replaces it, with the whole batch written once', async () => {
    const storage = await DuckDbStorage.open(join(dir, 'first-statement.duckdb'))
    const batch = (offset: string, impressions: ImpressionRow[], restated: string[] = []) => {
      const out = new BatchOutput()
      for (const r of impressions) out.impression(r, restated.includes(r.impression_id))
      out.count(1, 0, 'c1', 0, 0, 1)
      return {
        output: out,
        positions: [{ topic: 'adgate.impressions', partition: 0, offset }],
        expected: new Map(),
        checkpoints: [checkpoint(0, `state-${offset}`, offset)],
      }
    }
    await storage.write(batch('1', [impression('i1', 100), impression('i2', 100)]))
    // i1 again as a first statement (a replay, or its id sent twice): the plain INSERT meets the
    // stored row, and the write is made again with upserts; i3 is new, i2 restated.
    await storage.write(
      batch('2', [impression('i1', 200), impression('i2', 300), impression('i3', 400)], ['i2']),
    )
    expect(
      await storage.query('SELECT impression_id, cost_micros::INT AS c FROM impressions ORDER BY 1'),
    ).toEqual([
      { impression_id: 'i1', c: 200 },
      { impression_id: 'i2', c: 300 },
      { impression_id: 'i3', c: 400 },
    ])
    expect(await storage.query('SELECT sum(bids)::INT AS b FROM agg_minute')).toEqual([{ b: 2 }])
    const load = await storage.load(0, ['adgate.impressions'])
    expect(load.positions.get('adgate.impressions:0')).toBe('2')
    expect(load.checkpoint?.state.toString()).toBe('state-2')
    expect(readdirSync(storage.states.dir)).toHaveLength(1)
    await storage.close()
  })

  it('keeps each partition state in a file beside the database, named by the committed row; files of uncommitted writes are removed', async () => {
    const path = join(dir, 'files.duckdb')
    const storage = await DuckDbStorage.open(path)
    const write = (checkpoints: Checkpoint[]) =>
      storage.write({ output: new BatchOutput(), positions: [], expected: new Map(), checkpoints })
    await write([checkpoint(0, 'a0', '1'), checkpoint(1, 'a1', '1')])
    await write([checkpoint(0, 'b0', '2')])
    expect(storage.states.dir).toBe(`${path}.state`)
    // The replaced file of partition 0 is gone once its successor committed.
    const named = (await storage.query('SELECT state_file FROM checkpoints ORDER BY part')).map(
      (r) => r.state_file as string,
    )
    expect(readdirSync(storage.states.dir).sort()).toEqual([...named].sort())
    expect(named.map((f) => readFileSync(join(storage.states.dir, f), 'utf8'))).toEqual(['b0', 'a1'])
    // A write failing before its commit leaves no file behind, and the last committed state.
    const bad = checkpoint(1, 'c1', '3')
    bad.positions = [{ topic: 'adgate.bids', partition: 1, offset: 3n as unknown as string }] // JSON cannot write it
    await expect(write([checkpoint(0, 'c0', '3'), bad])).rejects.toThrow(/BigInt/)
    expect(readdirSync(storage.states.dir).sort()).toEqual([...named].sort())
    await storage.close()

    // A crash after a state file was written and before its row committed: the file is an orphan.
    const [orphan] = await StateFiles.open(`${path}.state`).write([
      { partition: 0, state: Buffer.from('d0') },
    ])
    const again = await DuckDbStorage.open(path)
    expect(readdirSync(again.states.dir).sort()).toEqual([...named].sort())
    expect(named).not.toContain(orphan)
    const loaded = await Promise.all([0, 1].map((p) => again.load(p, ['adgate.bids'])))
    expect(loaded.map((l) => [l.checkpoint!.state.toString(), l.checkpoint!.positions[0]!.offset])).toEqual([
      ['b0', '2'],
      ['a1', '1'],
    ])
    await again.close()
  })

  it('recovers a database whose checkpoints table holds the state (the layout before state files), moving it to files on open', async () => {
    const path = join(dir, 'old-layout.duckdb')
    let opens = 0
    let moved: Buffer[] = []
    const { storage } = await expectCrashSafeRun(
      async () => {
        // After the first run (killed mid-way), the file is put back into the old layout.
        if (++opens === 2) moved = await toOldLayout(path)
        return DuckDbStorage.open(path)
      },
      { seed: 12, stops: [9], sourceSeed: 300 },
    )
    expect(moved.length).toBeGreaterThan(0)
    expect(
      (
        await storage.query(
          "SELECT column_name FROM information_schema.columns WHERE table_name = 'checkpoints'",
        )
      ).map((r) => r.column_name),
    ).toEqual(['part', 'positions', 'state_file', 'written_at'])
    await storage.close()
  }, 180_000)

  it('moves an old-layout checkpoint to a file with the same bytes and positions', async () => {
    const path = join(dir, 'old-bytes.duckdb')
    const first = await DuckDbStorage.open(path)
    await first.write({
      output: new BatchOutput(),
      positions: [],
      expected: new Map(),
      checkpoints: [checkpoint(2, 'old state', '7')],
    })
    await first.close()
    expect((await toOldLayout(path)).map(String)).toEqual(['old state'])
    const storage = await DuckDbStorage.open(path)
    const { checkpoint: cp } = await storage.load(2, ['adgate.bids'])
    expect([cp!.state.toString(), cp!.positions]).toEqual([
      'old state',
      [{ topic: 'adgate.bids', partition: 2, offset: '7' }],
    ])
    expect(readdirSync(storage.states.dir)).toHaveLength(1)
    await storage.close()
  })
})

function checkpoint(partition: number, state: string, offset: string): Checkpoint {
  return { partition, state: Buffer.from(state), positions: [{ topic: 'adgate.bids', partition, offset }] }
}

/**
 * Rewrites a closed database's checkpoints as they were stored before state files (the state in a
 * BLOB column) and deletes the files. Returns the states moved.
 */
async function toOldLayout(path: string): Promise<Buffer[]> {
  const instance = await DuckDBInstance.create(path)
  const c = await instance.connect()
  const rows = (
    await c.runAndReadAll('SELECT part, positions, state_file, written_at FROM checkpoints')
  ).getRows() as [number, string, string, bigint][]
  const states = rows.map(([, , f]) => readFileSync(join(`${path}.state`, f)))
  await c.run('BEGIN TRANSACTION')
  await c.run(
    'CREATE TABLE old_checkpoints (part INTEGER PRIMARY KEY, positions TEXT NOT NULL, state BLOB NOT NULL, written_at BIGINT NOT NULL)',
  )
  for (const [i, [part, positions, , writtenAt]] of rows.entries())
    await c.run('INSERT INTO old_checkpoints VALUES ($1, $2, $3, $4)', [
      part,
      positions,
      blobValue(states[i]!),
      writtenAt,
    ])
  await c.run('DROP TABLE checkpoints')
  await c.run('ALTER TABLE old_checkpoints RENAME TO checkpoints')
  await c.run('COMMIT')
  c.closeSync()
  instance.closeSync()
  rmSync(`${path}.state`, { recursive: true })
  return states
}

function impression(id: string, cost: number): ImpressionRow {
  return {
    impression_id: id,
    event_id: `e-${id}-${cost}`,
    auction_id: `a-${id}`,
    campaign_id: 'c1',
    creative_id: null,
    publisher_id: null,
    site_domain: null,
    device_type: null,
    country: null,
    impression_time: 1000,
    cost_micros: cost,
    bid_event_id: null,
    bid_time: null,
    bid_price_micros: null,
    quality_flags: null,
  }
}
