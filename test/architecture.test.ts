// ARCHITECTURE.md's layering rule, checked against the imports of the source tree: every relative
// import goes down to a lower layer, except the pairs named below (each a known exception the
// page states). A new upward import fails here with the file that makes it.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The layers of ARCHITECTURE.md, bottom (0) up. */
const LAYER: Readonly<Record<string, number>> = {
  events: 0,
  codecs: 0,
  config: 1,
  decoders: 2,
  quality: 2,
  kafka: 2,
  registry: 2,
  workers: 3,
  spool: 3,
  correlator: 4,
  storage: 4,
  gateway: 5,
  generator: 5,
  cli: 6,
  bench: 7,
  loadtest: 7,
}

/** Imports within one layer that ARCHITECTURE.md allows (all others in a layer stay apart). */
const SIDEWAYS = new Set([
  'correlator -> storage', // the correlator writes through its storage interface
  'storage -> correlator', // known debt: storage still imports the correlator's row types
  'loadtest -> bench', // the tools library, bench/lib
  'bench -> loadtest', // known debt: bench/peers.ts uses loadtest/open-loop.ts
])

/** Single files that break the rule, named as debts on the page until they move (none today). */
const DEBTS = new Set<string>()

interface Import {
  readonly file: string
  readonly from: string
  readonly to: string
}

function importsOf(folder: string): Import[] {
  const out: Import[] = []
  for (const f of readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue
    const file = join(folder, f)
    const text = readFileSync(join(ROOT, file), 'utf8')
    for (const m of text.matchAll(/^(?:import|export)\b[^'"]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gm)) {
      const to = normalize(join(dirname(file), m[1]!)).split('/')[0]!
      if (to !== folder && !DEBTS.has(`${file} -> ${to}`)) out.push({ file, from: folder, to })
    }
  }
  return out
}

const imports = Object.keys(LAYER).flatMap(importsOf)

describe('the layering rule (ARCHITECTURE.md)', () => {
  it('sees the imports it checks', () => {
    // A broken scan must not pass by finding nothing.
    expect(imports.some((i) => i.file === 'workers/decode-task.ts' && i.to === 'decoders')).toBe(true)
    expect(imports.length).toBeGreaterThan(100)
  })

  it('every source folder has a layer', () => {
    expect(imports.filter((i) => LAYER[i.to] === undefined).map((i) => `${i.file} -> ${i.to}`)).toEqual([])
  })

  it('imports point down, or sideways only where the page allows it', () => {
    const wrong = imports
      .filter((i) => {
        const from = LAYER[i.from]!
        const to = LAYER[i.to]!
        return to > from || (to === from && !SIDEWAYS.has(`${i.from} -> ${i.to}`))
      })
      .map((i) => `${i.file} -> ${i.to}/`)
    expect(wrong).toEqual([])
  })

  it('the contract (events/, codecs/) and decoders/ import nothing above them; config/ only the contract', () => {
    const from = (folders: string[]) => imports.filter((i) => folders.includes(i.from))
    expect(from(['events', 'codecs']).map((i) => i.file)).toEqual([])
    expect(from(['config']).filter((i) => i.to !== 'events')).toEqual([])
    expect(from(['decoders']).filter((i) => !['events', 'codecs'].includes(i.to))).toEqual([])
  })

  it('only the entry points (cli/) and the benchmarks import gateway/', () => {
    const importers = new Set(imports.filter((i) => i.to === 'gateway').map((i) => i.from))
    expect([...importers].filter((f) => f !== 'cli' && f !== 'bench')).toEqual([])
  })
})
