import { join } from 'node:path'
import type { Storage } from '../correlator/storage.js'
import { type DuckDbOptions, DuckDbStorage } from './duckdb.js'

/**
 * ADGATE_STORAGE → a sink:
 *   duckdb             ADGATE_DATA_DIR/adgate.duckdb (the embedded default)
 *   duckdb:/path/file  that DuckDB file
 *   postgres://…       PostgreSQL
 *   parquet[:/dir]     DuckDB as above, exported as hive-partitioned Parquet (dt=/hour=) to
 *                      the directory (default ADGATE_DATA_DIR/parquet)
 */
export interface StorageTarget {
  kind: 'duckdb' | 'postgres' | 'parquet'
  duckdbPath: string
  postgresUrl?: string
  parquetDir?: string
}

export function storageTarget(storage: string, dataDir: string): StorageTarget {
  const duckdbPath = join(dataDir, 'adgate.duckdb')
  if (storage === 'duckdb') return { kind: 'duckdb', duckdbPath }
  if (storage.startsWith('duckdb:')) return { kind: 'duckdb', duckdbPath: storage.slice('duckdb:'.length) }
  if (/^postgres(ql)?:\/\//.test(storage)) return { kind: 'postgres', duckdbPath, postgresUrl: storage }
  if (storage === 'parquet') return { kind: 'parquet', duckdbPath, parquetDir: join(dataDir, 'parquet') }
  if (storage.startsWith('parquet:'))
    return { kind: 'parquet', duckdbPath, parquetDir: storage.slice('parquet:'.length) }
  throw new Error(`ADGATE_STORAGE=${storage}: must be duckdb, duckdb:/file, postgres://… or parquet[:/dir]`)
}

export async function openStorage(
  target: StorageTarget,
  options: DuckDbOptions & { intervalMs?: number } = {},
): Promise<Storage> {
  switch (target.kind) {
    case 'duckdb':
      return DuckDbStorage.open(target.duckdbPath, options)
    case 'postgres': {
      const { PostgresStorage } = await import('./postgres.js')
      return PostgresStorage.open(target.postgresUrl!)
    }
    case 'parquet': {
      const { ParquetStorage } = await import('./parquet.js')
      return ParquetStorage.open(target.duckdbPath, target.parquetDir!, options)
    }
  }
}
