// The README's metric catalog and the Prometheus text format, parsed for the ops tests.
import { readFileSync } from 'node:fs'

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

export interface CatalogRow {
  readonly name: string
  readonly type: MetricType
  readonly labels: readonly string[]
  /** The "###" heading the row is under: Gateway, Correlator, Process and runtime. */
  readonly section: string
}

const README = new URL('../../README.md', import.meta.url)

/** Every row of every `| metric | type | labels | meaning |` table in the README's "## Metrics". */
export function readCatalog(): CatalogRow[] {
  const text = readFileSync(README, 'utf8')
  const start = text.indexOf('\n## Metrics\n')
  if (start < 0) throw new Error('README has no "## Metrics" section')
  const end = text.indexOf('\n## ', start + 1)
  const rows: CatalogRow[] = []
  let section = ''
  let inTable = false
  for (const line of text.slice(start, end < 0 ? undefined : end).split('\n')) {
    const heading = /^### (.+)$/.exec(line)
    if (heading) section = heading[1]!.trim()
    if (/^\|\s*metric\s*\|\s*type\s*\|\s*labels\s*\|\s*meaning\s*\|$/.test(line)) {
      inTable = true
      continue
    }
    if (!line.startsWith('|')) {
      inTable = false
      continue
    }
    if (!inTable || /^\|\s*-/.test(line)) continue
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim())
    const name = /^`([a-z_:][a-z0-9_:]*)`$/.exec(cells[0] ?? '')
    if (!name || cells.length !== 4) throw new Error(`bad catalog row: ${line}`)
    const labels =
      cells[2] === '—' ? [] : cells[2]!.split(',').map((l) => /^`([a-z_]+)`$/.exec(l.trim())?.[1] ?? `?${l}`)
    rows.push({ name: name[1]!, type: cells[1] as MetricType, labels, section })
  }
  return rows
}

export interface Family {
  readonly name: string
  readonly type: MetricType
  /** Label names seen on its samples (le and quantile left out). */
  readonly labels: Set<string>
  /** label → values seen. */
  readonly values: Map<string, Set<string>>
  samples: number
}

/** Families of a /metrics scrape: `# TYPE` lines, and the samples that belong to each. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) {
      families.set(type[1]!, {
        name: type[1]!,
        type: type[2] as MetricType,
        labels: new Set(),
        values: new Map(),
        samples: 0,
      })
      continue
    }
    if (line === '' || line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!sample) throw new Error(`not a sample line: ${line}`)
    const base = sample[1]!.replace(/_(bucket|sum|count)$/, '')
    const family = families.get(sample[1]!) ?? families.get(base)
    if (!family) throw new Error(`sample without a # TYPE: ${line}`)
    family.samples++
    for (const [, label, value] of (sample[2] ?? '').matchAll(
      /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g,
    )) {
      if (label === 'le' || label === 'quantile') continue
      family.labels.add(label!)
      let set = family.values.get(label!)
      if (!set) {
        set = new Set()
        family.values.set(label!, set)
      }
      set.add(value!)
    }
  }
  return families
}
