// ARCHITECTURE.md's layering rule, checked against the imports of the source tree: every relative
// import goes down to a lower layer; folders of one layer do not import each other. A new upward
// or sideways import fails here with the file that makes it.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The layers of ARCHITECTURE.md, bottom (0) up; bench/lib/ is a layer of its own. */
const LAYER: Readonly<Record<string, number>> = {
  events: 0,
  codecs: 0,
  stats: 0,
  config: 1,
  decoders: 2,
  quality: 2,
  kafka: 2,
  registry: 2,
  workers: 3,
  spool: 3,
  correlator: 4,
  gateway: 5,
  generator: 5,
  storage: 5,
  cli: 6,
  'bench/lib': 7,
  bench: 8,
  loadtest: 8,
}

interface Import {
  readonly file: string
  readonly from: string
  readonly to: string
  /** The imported file, relative to the root. */
  readonly target: string
}

/** The layer unit a file belongs to: its top folder, or bench/lib. */
function unitOf(file: string): string {
  return file.startsWith('bench/lib/') ? 'bench/lib' : file.split('/')[0]!
}

function importsOf(folder: string): Import[] {
  const out: Import[] = []
  for (const f of readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue
    const file = join(folder, f)
    const from = unitOf(file)
    if (from !== folder) continue // bench/lib/ files are read as their own unit
    const text = readFileSync(join(ROOT, file), 'utf8')
    for (const m of text.matchAll(/^(?:import|export)\b[^'"]*?(?:\bfrom\s+)?'(\.{1,2}\/[^']+)'/gm)) {
      const target = normalize(join(dirname(file), m[1]!))
      const to = unitOf(target)
      if (to !== from) out.push({ file, from, to, target })
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

  it('imports point down, never up or sideways', () => {
    const wrong = imports.filter((i) => LAYER[i.to]! >= LAYER[i.from]!).map((i) => `${i.file} -> ${i.to}/`)
    expect(wrong).toEqual([])
  })

  it('the correlator owns its storage contract: storage/ (adapters) sees only correlator/storage.ts and rows.ts', () => {
    const contract = ['correlator/storage.js', 'correlator/rows.js']
    const seen = imports.filter((i) => i.from === 'storage' && i.to === 'correlator').map((i) => i.target)
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.filter((t) => !contract.includes(t))).toEqual([])
    expect(imports.filter((i) => i.from === 'correlator' && i.to === 'storage')).toEqual([])
  })

  it('the tools share bench/lib/ and never import each other', () => {
    const tools = ['bench', 'loadtest']
    expect(imports.some((i) => i.from === 'loadtest' && i.to === 'bench/lib')).toBe(true)
    expect(imports.filter((i) => tools.includes(i.from) && tools.includes(i.to))).toEqual([])
  })

  it('the contract (events/, codecs/, stats/) and decoders/ import nothing above them; config/ only the contract', () => {
    const from = (folders: string[]) => imports.filter((i) => folders.includes(i.from))
    expect(from(['events', 'codecs', 'stats']).map((i) => i.file)).toEqual([])
    expect(from(['config']).filter((i) => i.to !== 'events')).toEqual([])
    expect(from(['decoders']).filter((i) => !['events', 'codecs'].includes(i.to))).toEqual([])
  })

  it('only the entry points (cli/) and the benchmarks import gateway/', () => {
    const importers = new Set(imports.filter((i) => i.to === 'gateway').map((i) => i.from))
    expect([...importers].filter((f) => f !== 'cli' && !f.startsWith('bench'))).toEqual([])
  })
})
