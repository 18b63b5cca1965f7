// The image keeps only `dependencies` (Dockerfile: npm prune --omit=dev), so every package the
// shipped code imports must be one; test oracles such as csv-parse stay in devDependencies.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

/** Source folders that are not shipped: the tools (bench, load tests) run from a checkout. */
const TOOLS = new Set(['bench', 'loadtest'])
const SHIPPED = (
  JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] }
).include.filter((folder) => !TOOLS.has(folder))

/** Package names imported (statically or dynamically) by the shipped source, with a file each. */
function packagesImported(): Map<string, string> {
  const found = new Map<string, string>()
  for (const folder of SHIPPED) {
    for (const f of readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })) {
      if (!f.endsWith('.ts') || f.endsWith('.d.ts')) continue
      const text = readFileSync(join(ROOT, folder, f), 'utf8')
      for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'([^'.][^']*)'/gm)) {
        const spec = m[1]!
        if (spec.startsWith('node:')) continue
        const parts = spec.split('/')
        const name = spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!
        if (!found.has(name)) found.set(name, join(folder, f))
      }
    }
  }
  return found
}

describe('shipped code imports only production dependencies', () => {
  const imported = packagesImported()

  it('sees the imports it checks', () => {
    expect(imported.get('uWebSockets.js')).toBeDefined()
    expect(imported.get('avsc')).toBeDefined()
  })

  it('every imported package is in dependencies', () => {
    const missing = [...imported].filter(([name]) => pkg.dependencies[name] === undefined)
    expect(missing.map(([name, file]) => `${name} (${file})`)).toEqual([])
  })

  it('csv-parse is only the tests’ CSV oracle (a dev dependency)', () => {
    expect(pkg.dependencies['csv-parse']).toBeUndefined()
    expect(pkg.devDependencies['csv-parse']).toBeDefined()
  })
})
