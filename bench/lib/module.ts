import type { BenchResult } from './results.js'

/**
 * The shape of every bench module, bench/<name>.ts. `node dist/bench/run.js [name…]` imports
 * each selected module, awaits `run`, prints the results and writes bench/results/<name>.json.
 * A module that takes no options may ignore them: `export async function run(): Promise<BenchResult[]>`.
 */
export interface BenchModule {
  /** One line for `run.js --list`. */
  readonly description?: string
  run(options: RunOptions): Promise<BenchResult[]>
}

export interface RunOptions {
  /** Fewer and shorter runs: a smoke test of the bench, not figures to keep. */
  readonly quick: boolean
}
