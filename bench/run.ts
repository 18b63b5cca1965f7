import { readdirSync } from 'node:fs'
import { basename, dirname, extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchModule } from './lib/module.js'
import { writeResults } from './lib/results.js'
import { printTable } from './lib/table.js'

/**
 * Entry point: `node dist/bench/run.js [--quick] [--list] [name…]`. Each bench/<name>.ts that
 * exports `run` (see lib/module.ts) is a bench; with no names, all of them run, one after another
 * in this process. Results go to bench/results/<name>.json (not with --quick).
 */
const here = dirname(fileURLToPath(import.meta.url))
const ext = extname(fileURLToPath(import.meta.url)) // .js from dist/, .ts under a TS loader

function available(): string[] {
  return readdirSync(here)
    .filter((f) => f.endsWith(ext) && !f.endsWith(`.d${ext}`) && f !== `run${ext}` && f !== `compare${ext}`)
    .map((f) => basename(f, ext))
    .sort()
}

async function load(name: string): Promise<BenchModule> {
  const mod = (await import(`./${name}${ext}`)) as Partial<BenchModule>
  if (typeof mod.run !== 'function') throw new Error(`bench/${name} does not export run()`)
  return mod as BenchModule
}

async function main(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick')
  const names = argv.filter((a) => !a.startsWith('--'))
  const all = available()
  if (argv.includes('--list')) {
    for (const name of all) process.stdout.write(`${name}\t${(await load(name)).description ?? ''}\n`)
    return
  }
  const unknown = names.filter((n) => !all.includes(n))
  if (unknown.length > 0) throw new Error(`unknown bench ${unknown.join(', ')} (have: ${all.join(', ')})`)
  for (const name of names.length > 0 ? names : all) {
    const bench = await load(name)
    process.stdout.write(`bench ${name}: ${bench.description ?? ''}\n`)
    const results = await bench.run({ quick })
    printTable(name, results)
    if (quick) process.stdout.write('\n--quick: results not written\n')
    else process.stdout.write(`\nwrote ${writeResults(name, results)}\n`)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
