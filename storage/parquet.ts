import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  HOUR_MS,
  type PartitionLoad,
  type StatsQuery,
  type StatsRow,
  type Storage,
  type WriteBatch,
} from '../correlator/storage.js'
import { type DuckDbOptions, DuckDbStorage } from './duckdb.js'
import { RAW_TABLES } from './raw-tables.js'

/** Table (or view) → its time column, for the hive layout <dir>/<table>/dt=YYYY-MM-DD/hour=HH/. */
const EXPORTS: readonly [string, string][] = [
  ['impressions', 'impression_time'],
  ['clicks', 'click_time'],
  ['conversions', 'conversion_time'],
  ['late_events', 'event_time'],
  ['campaign_stats_minute', 'bucket'],
  ['campaign_stats_hour', 'bucket'],
  ['campaign_quality_minute', 'bucket'],
  ['campaign_quality_hour', 'bucket'],
  ['anomalies', 'bucket'],
  ...RAW_TABLES.map((t): [string, string] => [t.name, t.timeColumn]),
]

/**
 * Parquet files for Athena, BigQuery or Spark, in hive layout (`dt=2026-11-01/hour=07/`). Parquet
 * cannot be updated in place, so the tables are kept in DuckDB (upserts, positions, checkpoints)
 * and every hour touched since the last export is rewritten as a whole file from them: a file is
 * always the current content of its hour, so replays and restatements never duplicate rows.
 * Exports run at most every `intervalMs`, and on close.
 */
export class ParquetStorage implements Storage {
  readonly kind = 'parquet'
  private readonly touched = new Map<string, Set<number>>()
  private lastExport = 0

  private constructor(
    readonly db: DuckDbStorage,
    readonly dir: string,
    private readonly intervalMs: number,
  ) {}

  static async open(
    duckdbPath: string,
    dir: string,
    options: DuckDbOptions & { intervalMs?: number } = {},
  ): Promise<ParquetStorage> {
    const db = await DuckDbStorage.open(duckdbPath, options)
    return new ParquetStorage(db, dir, options.intervalMs ?? 10_000)
  }

  load(partition: number, topics: readonly string[]): Promise<PartitionLoad> {
    return this.db.load(partition, topics)
  }

  async write(batch: WriteBatch): Promise<void> {
    await this.db.write(batch)
    const o = batch.output
    const touch = (table: string, t: number) => {
      let set = this.touched.get(table)
      if (set === undefined) {
        set = new Set()
        this.touched.set(table, set)
      }
      set.add(t - (t % HOUR_MS))
    }
    for (const r of o.impressions.values()) touch('impressions', r.impression_time)
    for (const r of o.clicks.values()) touch('clicks', r.click_time)
    for (const r of o.conversions.values()) touch('conversions', r.conversion_time)
    for (const r of o.late) touch('late_events', r.event_time)
    for (const d of o.minute.values()) touch('campaign_stats_minute', d.bucket)
    for (const d of o.hour.values()) touch('campaign_stats_hour', d.bucket)
    for (const d of o.minute.values()) touch('campaign_quality_minute', d.bucket)
    for (const d of o.hour.values()) touch('campaign_quality_hour', d.bucket)
    for (const a of o.anomalies) touch('anomalies', a.bucket)
    for (const r of o.raw) for (const t of RAW_TABLES) if (t.type === r.type) touch(t.name, r.time)
    if (Date.now() - this.lastExport >= this.intervalMs) await this.export()
  }

  /** Rewrites the files of every hour touched since the last export. */
  async export(): Promise<void> {
    this.lastExport = Date.now()
    const statements: string[] = []
    for (const [table, column] of EXPORTS) {
      const hours = this.touched.get(table)
      if (hours === undefined) continue
      for (const h of hours) {
        const d = new Date(h).toISOString()
        const path = join(this.dir, table, `dt=${d.slice(0, 10)}`, `hour=${d.slice(11, 13)}`)
        mkdirSync(path, { recursive: true })
        statements.push(
          `COPY (SELECT * FROM ${table} WHERE ${column} >= ${h} AND ${column} < ${h + HOUR_MS} ORDER BY ${column})
           TO '${join(path, 'data.parquet').replaceAll("'", "''")}' (FORMAT parquet)`,
        )
      }
    }
    this.touched.clear()
    await this.db.run(statements)
  }

  stats(query: StatsQuery): Promise<StatsRow[]> {
    return this.db.stats(query)
  }

  query(sql: string): Promise<Record<string, unknown>[]> {
    return this.db.query(sql)
  }

  async close(): Promise<void> {
    await this.export()
    await this.db.close()
  }
}
