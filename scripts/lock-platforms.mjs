#!/usr/bin/env node
// Adds other platforms' optional binaries (biome, duckdb, …) back to package-lock.json.
//
// Why: npm drops platform-specific optional packages from the lockfile when node_modules exists
// (npm/cli#4828), and this workplace's registry does not serve other platforms' binaries at all,
// so npm cannot write them. `npm ci` then refuses the lockfile ("Missing: … from lock file").
// An entry with its os/cpu/libc is enough: npm skips it on a non-matching machine without fetching.
// Run after `npm install`: `npm run lock:platforms`.
import { readFileSync, writeFileSync } from 'node:fs'
import { answerUsage } from './lib/usage.mjs'

answerUsage([undefined])

const path = new URL('../package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(path, 'utf8'))
const OS = ['android', 'darwin', 'linux', 'win32', 'freebsd']
const CPU = ['arm64', 'x64', 'ia32', 'arm']
let added = 0

for (const [where, pkg] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`
    if (lock.packages[key] || lock.packages[`${where}/node_modules/${name}`]) continue
    const parts = name.split('/').pop().split('-')
    const os = parts.find((p) => OS.includes(p))
    const cpu = parts.find((p) => CPU.includes(p))
    if (!os || !cpu) continue // not a platform binary: leave it to npm
    lock.packages[key] = {
      version: version.replace(/^[\^~]/, ''),
      ...(pkg.dev ? { dev: true } : {}),
      optional: true,
      os: [os],
      cpu: [cpu],
      ...(parts.includes('musl') ? { libc: ['musl'] } : os === 'linux' ? { libc: ['glibc'] } : {}),
    }
    added++
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)),
)
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`)
process.stdout.write(`lock-platforms: added ${added} platform entries\n`)
