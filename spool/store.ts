import Database from 'better-sqlite3'

/**
 * The spool's storage: Kafka record batches (one topic-partition each, as the workers encoded
 * them) in SQLite, WAL journal with synchronous=FULL, so a committed append survives kill -9 and
 * power loss, and a torn write at the end is discarded by SQLite's own checksummed WAL recovery.
 * Rows are appended in id order, which is the replay order (per partition and overall).
 *
 * Why SQLite (bench/results/spool.json has the figures): a commit costs about 1.2 ms here; grouping
 * the batches of concurrent requests into one commit reaches several hundred thousand events/s,
 * above what the gateway ingests, while deletion, ordering, size accounting and crash recovery come
 * from a proven engine instead of a hand-made log format.
 */
export interface SpoolEntry {
  readonly id: number
  readonly topic: string
  readonly partition: number
  readonly records: number
  readonly bytes: Buffer
  readonly createdAt: number
}

export interface NewEntry {
  readonly topic: string
  readonly partition: number
  readonly records: number
  readonly bytes: Uint8Array
}

export interface SpoolStats {
  readonly entries: number
  readonly records: number
  readonly bytes: number
  /** Creation time of the oldest entry (epoch ms), or null when empty. */
  readonly oldest: number | null
}

export class SpoolStore {
  private readonly db: Database.Database
  private readonly insert: Database.Statement
  private readonly appendMany: (entries: readonly NewEntry[], now: number) => number[]

  constructor(path: string) {
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS batches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        records INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        created_at INTEGER NOT NULL
      )`)
    this.insert = this.db.prepare(
      'INSERT INTO batches (topic, partition, records, bytes, created_at) VALUES (?, ?, ?, ?, ?)',
    )
    // One transaction, one fsync, for every entry given: the group commit.
    this.appendMany = this.db.transaction((entries: readonly NewEntry[], now: number) =>
      entries.map((e) =>
        Number(this.insert.run(e.topic, e.partition, e.records, e.bytes, now).lastInsertRowid),
      ),
    )
  }

  /** Durable when this returns: the ids of the new entries, in order. */
  append(entries: readonly NewEntry[], now = Date.now()): number[] {
    return this.appendMany(entries, now)
  }

  /** The oldest entries after `afterId`, up to `maxBytes` (at least one). */
  read(afterId: number, maxBytes: number): SpoolEntry[] {
    const rows = this.db
      .prepare(
        'SELECT id, topic, partition, records, bytes, created_at AS createdAt FROM batches WHERE id > ? ORDER BY id LIMIT 1000',
      )
      .all(afterId) as SpoolEntry[]
    const out: SpoolEntry[] = []
    let bytes = 0
    for (const r of rows) {
      if (out.length > 0 && bytes + r.bytes.length > maxBytes) break
      out.push(r)
      bytes += r.bytes.length
    }
    return out
  }

  /** Remove entries (acknowledged by Kafka, or consumed in embedded mode). */
  remove(ids: readonly number[]): void {
    const del = this.db.prepare('DELETE FROM batches WHERE id = ?')
    this.db.transaction(() => {
      for (const id of ids) del.run(id)
    })()
  }

  /** Remove every entry up to and including `id`. */
  removeThrough(id: number): void {
    this.db.prepare('DELETE FROM batches WHERE id <= ?').run(id)
  }

  stats(): SpoolStats {
    const row = this.db
      .prepare(
        'SELECT COUNT(*) AS entries, COALESCE(SUM(records), 0) AS records, COALESCE(SUM(length(bytes)), 0) AS bytes, MIN(created_at) AS oldest FROM batches',
      )
      .get() as SpoolStats
    return row
  }

  close(): void {
    this.db.close()
  }
}
