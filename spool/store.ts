import { statfsSync } from 'node:fs'
import { dirname } from 'node:path'
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
/**
 * Bumped when the tables change; a spool of another format is refused, never misread. Version 2
 * added the quarantine table (a version 1 spool is upgraded in place: the table is created).
 */
const FORMAT_VERSION = 2
const UPGRADES_FROM = new Set([1])

export interface SpoolEntry {
  readonly id: number
  readonly topic: string
  readonly partition: number
  /** Offset of the entry's first record within its topic-partition, contiguous like Kafka's. */
  readonly baseOffset: number
  readonly records: number
  readonly bytes: Buffer
  readonly createdAt: number
}

/** A batch Kafka refused for good after the spool acknowledged it: kept, retried, exportable. */
export interface QuarantinedEntry extends SpoolEntry {
  /** Kafka's refusal, as the replayer last got it. */
  readonly reason: string
  readonly refusedAt: number
  /** How many times Kafka refused it. */
  readonly refusals: number
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
  /** Entries per topic-partition that has any. */
  readonly partitions: readonly PartitionEntries[]
  /** Quarantined batches (not counted above, except in bytes: they hold the spool's space). */
  readonly quarantined: { readonly entries: number; readonly records: number }
}

export interface TopicPartition {
  readonly topic: string
  readonly partition: number
}

export interface PartitionEntries extends TopicPartition {
  readonly entries: number
}

export class SpoolStore {
  private readonly db: Database.Database
  private readonly insert: Database.Statement
  private readonly appendMany: (entries: readonly NewEntry[], now: number) => number[]
  private readonly next = new Map<string, number>()
  private readonly dir: string
  private readonly pageSize: number
  /** Disk space appends leave free, so deletes (the drain) and checkpoints can always be written. */
  private readonly reserve: number

  constructor(path: string) {
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    // A small WAL: its pages go back into the database, where the space of deleted rows is reused.
    this.db.pragma('wal_autocheckpoint = 256')
    this.pageSize = this.db.pragma('page_size', { simple: true }) as number
    this.dir = dirname(path)
    const disk = statfsSync(this.dir)
    this.reserve = Math.min(64 * 2 ** 20, (disk.blocks * disk.bsize) / 4)
    const version = this.db.pragma('user_version', { simple: true }) as number
    const fresh = this.db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'batches'").get() as {
      n: number
    }
    if (fresh.n > 0 && version !== FORMAT_VERSION && !UPGRADES_FROM.has(version)) {
      throw new Error(
        `spool ${path} has format ${version}, this build reads ${FORMAT_VERSION}; drain it with the build that wrote it`,
      )
    }
    this.db.pragma(`user_version = ${FORMAT_VERSION}`)
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS batches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        base_offset INTEGER NOT NULL,
        records INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        created_at INTEGER NOT NULL
      );
      -- Next offset per topic-partition, kept apart from the batches so offsets keep increasing
      -- after entries are deleted (a reader's stored positions must never point past new data).
      CREATE TABLE IF NOT EXISTS next_offsets (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
      );
      -- Batches Kafka refused for good after they were acknowledged from here (a topic's
      -- max.message.bytes lowered, a record it calls invalid): kept with the refusal until Kafka
      -- takes them or an operator exports them; never dropped.
      CREATE TABLE IF NOT EXISTS quarantine (
        id INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        base_offset INTEGER NOT NULL,
        records INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        refused_at INTEGER NOT NULL,
        refusals INTEGER NOT NULL
      )`)
    this.insert = this.db.prepare(
      'INSERT INTO batches (topic, partition, base_offset, records, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    )
    const setNext = this.db.prepare(
      'INSERT INTO next_offsets (topic, partition, next) VALUES (?, ?, ?) ON CONFLICT (topic, partition) DO UPDATE SET next = excluded.next',
    )
    const saved = this.db.prepare('SELECT topic, partition, next FROM next_offsets').all() as {
      topic: string
      partition: number
      next: number
    }[]
    for (const r of saved) this.next.set(tpKey(r.topic, r.partition), r.next)
    // One transaction, one fsync, for every entry given: the group commit.
    this.appendMany = this.db.transaction((entries: readonly NewEntry[], now: number) => {
      const ids: number[] = []
      const touched = new Map<string, NewEntry>()
      for (const e of entries) {
        const key = tpKey(e.topic, e.partition)
        const base = this.next.get(key) ?? 0
        ids.push(Number(this.insert.run(e.topic, e.partition, base, e.records, e.bytes, now).lastInsertRowid))
        this.next.set(key, base + e.records)
        touched.set(key, e)
      }
      for (const [key, e] of touched) setNext.run(e.topic, e.partition, this.next.get(key))
      return ids
    })
  }

  /** Durable when this returns: the ids of the new entries, in order. */
  append(entries: readonly NewEntry[], now = Date.now()): number[] {
    let bytes = 0
    for (const e of entries) bytes += e.bytes.length
    // Once SQLite has hit a full disk it cannot even delete (the WAL cannot grow): never get there.
    const fs = statfsSync(this.dir)
    const room =
      fs.bavail * fs.bsize + (this.db.pragma('freelist_count', { simple: true }) as number) * this.pageSize
    if (room - bytes < this.reserve)
      throw new Error(`the disk is full (${room} bytes left, ${this.reserve} kept so the spool can drain)`)
    return this.appendMany(entries, now)
  }

  /**
   * The oldest entries after `afterId`, up to `maxBytes` (at least one), leaving out the `skip`
   * partitions (whose leader is gone: their entries must not hold back the others').
   */
  read(afterId: number, maxBytes: number, skip: readonly TopicPartition[] = []): SpoolEntry[] {
    const without =
      skip.length === 0 ? '' : `AND (topic, partition) NOT IN (VALUES ${skip.map(() => '(?, ?)').join(', ')})`
    const rows = this.db
      .prepare(
        `SELECT id, topic, partition, base_offset AS baseOffset, records, bytes, created_at AS createdAt FROM batches WHERE id > ? ${without} ORDER BY id LIMIT 1000`,
      )
      .all(afterId, ...skip.flatMap((tp) => [tp.topic, tp.partition])) as SpoolEntry[]
    return upTo(rows, maxBytes)
  }

  /** Remove entries (acknowledged by Kafka, or consumed in embedded mode). */
  remove(ids: readonly number[]): void {
    const del = this.db.prepare('DELETE FROM batches WHERE id = ?')
    this.db.transaction(() => {
      for (const id of ids) del.run(id)
    })()
  }

  /** Move entries Kafka refused for good into the quarantine, with the refusal, in one transaction. */
  quarantine(ids: readonly number[], reason: string, now = Date.now()): void {
    const move = this.db.prepare(
      'INSERT INTO quarantine SELECT id, topic, partition, base_offset, records, bytes, created_at, ?, ?, 1 FROM batches WHERE id = ?',
    )
    const del = this.db.prepare('DELETE FROM batches WHERE id = ?')
    this.db.transaction(() => {
      for (const id of ids) {
        move.run(reason, now, id)
        del.run(id)
      }
    })()
  }

  /** Quarantined entries after `afterId` in id order, up to `maxBytes` (at least one). */
  quarantined(afterId: number, maxBytes: number): QuarantinedEntry[] {
    const rows = this.db
      .prepare(
        'SELECT id, topic, partition, base_offset AS baseOffset, records, bytes, created_at AS createdAt, reason, refused_at AS refusedAt, refusals FROM quarantine WHERE id > ? ORDER BY id LIMIT 1000',
      )
      .all(afterId) as QuarantinedEntry[]
    return upTo(rows, maxBytes)
  }

  /** Kafka refused quarantined entries once more: the latest refusal is kept. */
  refusedAgain(ids: readonly number[], reason: string, now = Date.now()): void {
    const update = this.db.prepare(
      'UPDATE quarantine SET reason = ?, refused_at = ?, refusals = refusals + 1 WHERE id = ?',
    )
    this.db.transaction(() => {
      for (const id of ids) update.run(reason, now, id)
    })()
  }

  /** Forget quarantined entries (Kafka took them at last, or an operator exported and removed them). */
  removeQuarantined(ids: readonly number[]): void {
    const del = this.db.prepare('DELETE FROM quarantine WHERE id = ?')
    this.db.transaction(() => {
      for (const id of ids) del.run(id)
    })()
  }

  /** Remove every entry up to and including `id`. */
  removeThrough(id: number): void {
    this.db.prepare('DELETE FROM batches WHERE id <= ?').run(id)
  }

  /**
   * created_at of the first entry waiting, or null. Entries are appended in time order, so the
   * first by id is the oldest: an index lookup, where MIN(created_at) in stats() scans every row
   * (the spool calls this after each removal while it drains, so a scan made draining quadratic).
   */
  oldest(): number | null {
    const row = this.db.prepare('SELECT created_at AS oldest FROM batches ORDER BY id LIMIT 1').get() as
      | { oldest: number }
      | undefined
    return row?.oldest ?? null
  }

  stats(): SpoolStats {
    const row = this.db
      .prepare(
        'SELECT COUNT(*) AS entries, COALESCE(SUM(records), 0) AS records, COALESCE(SUM(length(bytes)), 0) AS bytes, MIN(created_at) AS oldest FROM batches',
      )
      .get() as Omit<SpoolStats, 'partitions' | 'quarantined'>
    const partitions = this.db
      .prepare('SELECT topic, partition, COUNT(*) AS entries FROM batches GROUP BY topic, partition')
      .all() as PartitionEntries[]
    const q = this.db
      .prepare(
        'SELECT COUNT(*) AS entries, COALESCE(SUM(records), 0) AS records, COALESCE(SUM(length(bytes)), 0) AS bytes FROM quarantine',
      )
      .get() as { entries: number; records: number; bytes: number }
    return {
      ...row,
      bytes: row.bytes + q.bytes,
      partitions,
      quarantined: { entries: q.entries, records: q.records },
    }
  }

  /** The next offset of every topic-partition ever written. */
  ends(): { topic: string; partition: number; next: number }[] {
    return [...this.next].map(([key, next]) => {
      const [topic, partition] = key.split('\u0000') as [string, string]
      return { topic, partition: Number(partition), next }
    })
  }

  close(): void {
    this.db.close()
  }
}

/** The first rows up to `maxBytes` of bytes, at least one. */
function upTo<T extends { readonly bytes: Buffer }>(rows: readonly T[], maxBytes: number): T[] {
  const out: T[] = []
  let bytes = 0
  for (const r of rows) {
    if (out.length > 0 && bytes + r.bytes.length > maxBytes) break
    out.push(r)
    bytes += r.bytes.length
  }
  return out
}

function tpKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`
}
