import { readFileSync } from 'node:fs'

/**
 * `npm run bench:compare -- old.json new.json [--threshold 15]`: diffs two results files — bench
 * results (bench/results/<name>.json) or load-test results (loadtest/results/<scenario>.json) —
 * and flags every figure that got worse by more than the threshold (default 15%). Throughput is
 * better higher; latency, memory, CPU and error counts are better lower. Exits 1 on a regression.
 */
interface Row {
  key: string
  value: number
  unit: string
  higherIsBetter: boolean
}

const LOWER_UNITS = new Set(['ms', 'MB', 'CPU-s', 'ns', 'µs', 's', 'bytes'])

function rows(file: string): { rows: Row[]; commit: string } {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  const commit = String(doc.commit ?? 'unknown')
  if (Array.isArray(doc.results)) {
    const list = doc.results as { case: string; metric: string; value: number; unit: string }[]
    return {
      commit,
      rows: list.map((r) => ({
        key: `${r.case} · ${r.metric}`,
        value: r.value,
        unit: r.unit,
        higherIsBetter: !LOWER_UNITS.has(r.unit),
      })),
    }
  }
  const fields: [string, string, boolean][] = [
    ['events_per_s', 'events/s', true],
    ['p50_ms', 'ms', false],
    ['p99_ms', 'ms', false],
    ['p999_ms', 'ms', false],
    ['errors', 'count', false],
    ['non2xx', 'count', false],
  ]
  return {
    commit,
    rows: fields
      .filter(([k]) => typeof doc[k] === 'number')
      .map(([k, unit, higherIsBetter]) => ({
        key: `${doc.scenario ?? 'loadtest'} · ${k}`,
        value: doc[k] as number,
        unit,
        higherIsBetter,
      })),
  }
}

function main(argv: string[]): number {
  const ti = argv.indexOf('--threshold')
  const threshold = ti >= 0 ? Number(argv[ti + 1]) / 100 : 0.15
  const files = argv.filter((a, i) => !a.startsWith('--') && (ti < 0 || i !== ti + 1))
  if (files.length !== 2) {
    process.stderr.write('usage: npm run bench:compare -- old.json new.json [--threshold 15]\n')
    return 2
  }
  const a = rows(files[0]!)
  const b = rows(files[1]!)
  const before = new Map(a.rows.map((r) => [r.key, r]))
  let regressions = 0
  process.stdout.write(
    `${files[0]} (${a.commit}) → ${files[1]} (${b.commit}), threshold ${(threshold * 100).toFixed(0)}%\n`,
  )
  for (const r of b.rows) {
    const old = before.get(r.key)
    if (!old) {
      process.stdout.write(`  new       ${r.key}: ${r.value} ${r.unit}\n`)
      continue
    }
    before.delete(r.key)
    const change =
      old.value === 0
        ? r.value === 0
          ? 0
          : Number.POSITIVE_INFINITY
        : (r.value - old.value) / Math.abs(old.value)
    const worse = r.higherIsBetter ? -change : change
    const flag = worse > threshold ? 'REGRESSED' : worse < -threshold ? 'improved ' : 'same     '
    if (worse > threshold) regressions++
    const pct = Number.isFinite(change) ? `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}%` : 'from 0'
    process.stdout.write(`  ${flag} ${r.key}: ${old.value} → ${r.value} ${r.unit} (${pct})\n`)
  }
  for (const r of before.values()) process.stdout.write(`  gone      ${r.key}\n`)
  process.stdout.write(`${regressions} regression(s) over ${(threshold * 100).toFixed(0)}%\n`)
  return regressions > 0 ? 1 : 0
}

process.exitCode = main(process.argv.slice(2))
