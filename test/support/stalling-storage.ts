import type { WriteBatch } from '../../correlator/storage.js'
import { MemoryStorage } from '../../storage/memory.js'

/** Memory storage whose first write waits until `release()`: a slow write (a DuckDB spill) stalling the pipeline. */
export class StallingStorage extends MemoryStorage {
  private writes = 0
  private resume!: () => void
  private readonly resumed = new Promise<void>((r) => {
    this.resume = r
  })
  private began!: () => void
  /** Resolves when the first write has started (and waits). */
  readonly stalled = new Promise<void>((r) => {
    this.began = r
  })

  release(): void {
    this.resume()
  }

  override async write(batch: WriteBatch): Promise<void> {
    if (++this.writes === 1) {
      this.began()
      await this.resumed
    }
    await super.write(batch)
  }
}
