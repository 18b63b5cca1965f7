// A vitest reporter that ends the run with a loud account of the skipped tests: how many, in which
// files, and which services this machine lacks. Outside CI a missing Java, PostgreSQL or Prometheus
// makes suites skip instead of fail; this summary keeps that from passing unnoticed.
// (In CI, CI=true, the global setup and the test files fail on a missing service instead.)
import type { Reporter, TestModule } from 'vitest/node'
import { missingServices, type Service } from './services.js'

/** The banner for `skipped` tests (per file) out of `total`; empty when nothing was skipped. */
export function skipSummary(
  skipped: ReadonlyMap<string, number>,
  total: number,
  missing: readonly Pick<Service, 'name' | 'needed'>[],
): string {
  const count = [...skipped.values()].reduce((a, b) => a + b, 0)
  if (count === 0) return ''
  const bar = '!'.repeat(78)
  const lines = [`${count} of ${total} tests were SKIPPED, not run:`]
  for (const [file, n] of [...skipped].sort()) lines.push(`  ${String(n).padStart(4)}  ${file}`)
  if (missing.length > 0) {
    lines.push('missing on this machine:')
    for (const s of missing) lines.push(`  ${s.name}: needed by ${s.needed}`)
  }
  return `\n${bar}\n${lines.map((l) => `!! ${l}`).join('\n')}\n${bar}\n`
}

export default class SkipSummary implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skipped = new Map<string, number>()
    let total = 0
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        total++
        if (t.result().state === 'skipped')
          skipped.set(m.relativeModuleId, (skipped.get(m.relativeModuleId) ?? 0) + 1)
      }
    }
    const text = skipSummary(skipped, total, skipped.size > 0 ? missingServices() : [])
    if (text) process.stdout.write(text)
  }
}
