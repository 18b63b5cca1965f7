import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync } from 'node:fs'
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * Join-state snapshots as files in one directory (for DuckDB, beside its database file). Kept out
 * of DuckDB's tables because every few megabytes of blob rewritten there made DuckDB's checkpoint
 * rewrite the table, and its allocator peaked at ~376 MB for it (README, "Where the correlator's
 * peak RSS goes"). A snapshot is written and fsynced under a name never used before; the storage
 * commits that name with the positions it covers, so a crash before that commit leaves a file no
 * row names: `clean` removes those, and `remove` the files a commit replaced.
 */
const NAME = /^p\d+-[0-9a-z]+-[0-9a-f]{12}\.state$/

export class StateFiles {
  private constructor(readonly dir: string) {}

  /** The files in `dir`; `create`: the directory is made if missing (not for a read-only database). */
  static open(dir: string, create = true): StateFiles {
    if (create) mkdirSync(dir, { recursive: true })
    return new StateFiles(dir)
  }

  /** Writes each state to a new file, durable (file and directory entry) on return; their names. */
  async write(states: readonly { partition: number; state: Buffer }[]): Promise<string[]> {
    const names: string[] = []
    try {
      for (const { partition, state } of states) {
        const name = `p${partition}-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}.state`
        names.push(name)
        const f = await open(join(this.dir, name), 'wx')
        try {
          await f.writeFile(state)
          await f.sync()
        } finally {
          await f.close()
        }
      }
      if (names.length > 0) await this.syncDir()
      return names
    } catch (err) {
      await this.remove(names)
      throw err
    }
  }

  read(name: string): Promise<Buffer> {
    return readFile(join(this.dir, name))
  }

  /** Removes files (missing ones are no error: a crash may have come between commit and remove). */
  async remove(names: Iterable<string>): Promise<void> {
    for (const name of names) await rm(join(this.dir, name), { force: true })
  }

  /** Removes every file but `keep`: snapshots of writes that never committed, or whose removal a crash cut off. */
  async clean(keep: ReadonlySet<string>): Promise<void> {
    await this.remove(readdirSync(this.dir).filter((name) => NAME.test(name) && !keep.has(name)))
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, 'r')
    try {
      await d.sync()
    } finally {
      await d.close()
    }
  }
}
