import type { BenchResult } from './results.js'

/** Print results as an aligned text table. */
export function printTable(title: string, results: readonly BenchResult[], out = process.stdout): void {
  const rows = results.map((r) => [
    r.case,
    r.metric,
    formatNumber(r.value),
    r.unit,
    r.baseline === undefined ? '' : formatNumber(r.baseline),
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
  ])
  const head = ['case', 'metric', 'value', 'unit', 'baseline', 'ratio']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const numeric = [false, false, true, false, true, true]
  const line = (cells: string[]) =>
    cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')
  out.write(`\n${title}\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`)
  for (const row of rows) out.write(`${line(row)}\n`)
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US')
  if (Math.abs(n) >= 10) return n.toFixed(1)
  return n.toFixed(2)
}
