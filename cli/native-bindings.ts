import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/**
 * lz4 and better-sqlite3 are native builds, which npm 11 skips when their install scripts are not
 * approved (allowScripts). Check they really loaded, once at start-up, and say exactly what to do
 * when not. (adgate's own addon, native/, is optional: JSON bodies take the JS decoder without it.)
 */
export function checkNativeBindings(): string[] {
  const problems: string[] = []
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
