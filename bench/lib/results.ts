import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * One figure of a benchmark. The results file (bench/results/<name>.json) is a contract other
 * tools read: `{ name, commit, date, machine: { cpus, model }, results: StoredResult[] }`.
 */
export interface BenchResult {
  readonly case: string
  readonly metric: string
  readonly value: number
  readonly unit: string
  /** The baseline's value of the same metric, measured in the same run. */
  readonly baseline?: number
  /** value / baseline. */
  readonly ratio?: number
  /**
   * The part of its bench that measured it, for benches whose parts can run alone
   * (BENCH_CORRELATOR_CASES): a run replaces every earlier entry of the parts it ran. Without
   * one, the case is its own part.
   */
  readonly part?: string
}

/** A figure as the results file keeps it: with the commit and date of the run that measured it. */
export interface StoredResult extends BenchResult {
  readonly commit: string
  readonly date: string
}

/** `commit` and `date` at the top are the last run's; a file can mix runs (see mergeResults). */
export interface ResultsFile {
  readonly name: string
  readonly commit: string
  readonly date: string
  readonly machine: { readonly cpus: number; readonly model: string }
  readonly results: readonly StoredResult[]
}

/** The repository root: the first directory above this module holding package.json (sources or dist/). */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)))

function findRoot(from: string): string {
  let dir = from
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir
    dir = dirname(dir)
  }
  throw new Error(`bench: cannot find package.json above ${from}`)
}

export const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results')

/** Short commit id, with -dirty when tracked or new files differ from it (results files aside). */
export function commitId(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim()
    const id = git('rev-parse', '--short', 'HEAD')
    const changes = git('status', '--porcelain', '--', '.', ':(exclude)bench/results')
    return changes === '' ? id : `${id}-dirty`
  } catch {
    return 'unknown'
  }
}

export function machine(): { cpus: number; model: string } {
  const list = cpus()
  return { cpus: list.length, model: list[0]?.model.trim() ?? 'unknown' }
}

/**
 * Write bench/results/<name>.json: this run's figures replace the entries of the parts it ran,
 * the file's other entries stay (see mergeResults). Returns its path.
 */
export function writeResults(name: string, results: readonly BenchResult[]): string {
  const path = join(RESULTS_DIR, `${name}.json`)
  const previous = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as EarlierFile) : null
  const file = mergeResults(previous, name, results, {
    commit: commitId(),
    date: new Date().toISOString(),
    machine: machine(),
  })
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`)
  return path
}

/**
 * The results file after a run: the run's figures, stamped with its commit and date, take the
 * place of every earlier entry of the parts it ran (a part's entries all go, so a case that is
 * renamed or did not come back this time is not left behind); every other entry is kept with the
 * commit and date it was measured on (the file's own, for entries written before entries had them).
 * A run whose figures name no part is a whole bench: it replaces the file, since its case names
 * may carry measured values (a peers rate, a baseline commit) and an old case would otherwise stay
 * beside its successor.
 */
export function mergeResults(
  previous: EarlierFile | null,
  name: string,
  results: readonly BenchResult[],
  run: Pick<ResultsFile, 'commit' | 'date' | 'machine'>,
): ResultsFile {
  const kept = results.some((r) => r.part !== undefined) ? previous : null
  const fresh = new Map<string, StoredResult[]>()
  for (const r of results) {
    const part = partOf(r)
    fresh.set(part, [...(fresh.get(part) ?? []), { ...rounded(r), commit: run.commit, date: run.date }])
  }
  const out: StoredResult[] = []
  const placed = new Set<string>()
  for (const old of kept?.results ?? []) {
    const part = partOf(old)
    if (!fresh.has(part))
      out.push({ ...old, commit: old.commit ?? kept!.commit, date: old.date ?? kept!.date })
    else if (!placed.has(part)) {
      // The part's new figures where its old ones were: the file's order, and its diffs, stay stable.
      placed.add(part)
      out.push(...fresh.get(part)!)
    }
  }
  for (const [part, rs] of fresh) if (!placed.has(part)) out.push(...rs)
  return { name, commit: run.commit, date: run.date, machine: run.machine, results: out }
}

/** A results file as read back: entries written before entries had their commit and date lack them. */
type EarlierFile = Pick<ResultsFile, 'commit' | 'date'> & {
  readonly results: readonly (BenchResult & Partial<StoredResult>)[]
}

function partOf(r: BenchResult): string {
  return r.part ?? r.case
}

// Four significant digits: run-to-run noise is larger than that, and diffs stay readable.
function rounded(r: BenchResult): BenchResult {
  const out: BenchResult = { ...r, value: sig(r.value) }
  if (r.baseline !== undefined) Object.assign(out, { baseline: sig(r.baseline) })
  if (r.ratio !== undefined) Object.assign(out, { ratio: sig(r.ratio) })
  return out
}

function sig(n: number): number {
  return Number.isFinite(n) && n !== 0 ? Number(n.toPrecision(4)) : n
}

/** A candidate's figure beside its baseline's. */
export function compared(
  name: string,
  metric: string,
  unit: string,
  value: number,
  baseline: number,
): BenchResult {
  return { case: name, metric, value, unit, baseline, ratio: value / baseline }
}

// Units of a rate or a cost: a bench that reports 0 of one measured nothing.
const MUST_BE_POSITIVE = /\/s\b|\/s\/|CPU-s|^µs$|^ns$/

/**
 * What is wrong with a bench's figures, if anything: no figures, a value, baseline or ratio that
 * is not a finite number, or a rate or cost of zero. run.js refuses to print or write such results.
 */
export function resultProblems(results: readonly BenchResult[]): string[] {
  if (results.length === 0) return ['no results']
  const problems: string[] = []
  for (const r of results) {
    for (const [field, v] of [
      ['value', r.value],
      ['baseline', r.baseline],
      ['ratio', r.ratio],
    ] as const) {
      if (v !== undefined && !Number.isFinite(v)) problems.push(`${r.case} / ${r.metric}: ${field} is ${v}`)
    }
    if (MUST_BE_POSITIVE.test(r.unit) && r.value <= 0)
      problems.push(`${r.case} / ${r.metric}: ${r.value} ${r.unit}`)
  }
  return problems
}
