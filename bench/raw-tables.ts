import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Storage } from '../correlator/storage.js'
import { DuckDbStorage } from '../storage/duckdb.js'
import { PostgresStorage } from '../storage/postgres.js'
import { freshSchema, postgres, throughput } from './correlator.js'
import { count, funnelLogs } from './lib/correlator-workload.js'
import type { RunOptions } from './lib/module.js'
import type { BenchResult } from './lib/results.js'
import { median } from './lib/stats.js'

export const description =
  'raw tables: the correlator in process with ADGATE_RAW_TABLES on against off, DuckDB and PostgreSQL, interleaved in one run (events per CPU-second, medians)'

export async function run(options: RunOptions): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'adgate-bench-raw-'))
  const bids = options.quick ? 5_000 : 100_000
  const rounds = options.quick ? 1 : 5
  const logs = funnelLogs(bids, 1)
  const events = count(logs)
  const pg = postgres()
  const sinks: [string, () => Promise<Storage>][] = [
    ['DuckDB', async () => DuckDbStorage.open(join(dir, `t-${randomBytes(4).toString('hex')}.duckdb`))],
  ]
  if (pg)
    sinks.push([
      'PostgreSQL (this process only; server CPU is not counted)',
      async () => PostgresStorage.open(await freshSchema(pg.url)),
    ])
  const out: BenchResult[] = []
  try {
    for (const [name, open] of sinks) {
      const off: number[] = []
      const on: number[] = []
      // Interleaved, so both see the same machine.
      for (let round = 0; round < rounds; round++) {
        off.push((await throughput(logs, await open(), { rawEvents: false })).perCore)
        on.push((await throughput(logs, await open(), { rawEvents: true })).perCore)
      }
      const base = median(off)
      const label = `funnel of ${events} events (${bids} bids) → ${name}`
      out.push({
        case: `${label}, raw tables off`,
        metric: 'events/s per core',
        value: Math.round(base),
        unit: 'events/CPU-s',
      })
      out.push({
        case: `${label}, raw tables on`,
        metric: 'events/s per core',
        value: Math.round(median(on)),
        unit: 'events/CPU-s',
        baseline: Math.round(base),
        ratio: Math.round((median(on) / base) * 1000) / 1000,
      })
    }
  } finally {
    pg?.drop()
    rmSync(dir, { recursive: true, force: true })
  }
  return out
}
