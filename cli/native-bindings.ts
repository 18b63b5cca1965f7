import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/**
 * The npm simdjson package silently falls back to JSON when its native build is missing (npm 11
 * skips unapproved install scripts); lz4 and better-sqlite3 are native builds too. Check they really
 * loaded, once at start-up, and say exactly what to do when not.
 */
export function checkNativeBindings(): string[] {
  const problems: string[] = []
  try {
    require.resolve('simdjson/build/Release/simdjson.node')
  } catch {
    problems.push(
      'simdjson: native binding not built (its JS fallback would be used silently). ' +
        'Run `npm_config_nodedir=/usr npm rebuild simdjson` and check "allowScripts" in package.json.',
    )
  }
  try {
    require('lz4/build/Release/lz4.node')
  } catch (err) {
    problems.push(
      `lz4: native binding not built: ${(err as Error).message}. ` +
        'Run `npm_config_nodedir=/usr npm rebuild lz4` and check "allowScripts" in package.json.',
    )
  }
  try {
    const Database = require('better-sqlite3') as new (path: string) => { close(): void }
    new Database(':memory:').close()
  } catch (err) {
    problems.push(
      `better-sqlite3 (the spool): native binding did not load: ${(err as Error).message}. ` +
        'Run `npm_config_nodedir=/usr npm rebuild better-sqlite3` and check "allowScripts" in package.json.',
    )
  }
  return problems
}

/** Exit with a clear message when a native binding is missing. */
export function assertNativeBindings(): void {
  const problems = checkNativeBindings()
  if (problems.length === 0) return
  process.stderr.write(`adgate: native bindings missing:\n  - ${problems.join('\n  - ')}\n`)
  process.exit(1)
}
