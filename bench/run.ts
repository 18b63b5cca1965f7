import { readdirSync } from 'node:fs'
import { basename, dirname, extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchModule } from './lib/module.js'
import { resultProblems, writeResults } from './lib/results.js'
import { printTable } from './lib/table.js'

/**
 * Entry point: `node dist/bench/run.js [--quick] [--list] [name…]`. Each bench/<name>.ts that
 * exports `run` (see lib/module.ts) is a bench; with no names, all of them run, one after another
 * in this process. Results go to bench/results/<name>.json. --quick is the smoke run CI makes of
 * the in-process benches (test/bench/quick.test.ts): tiny sizes, baseline commits not compiled
 * (this build stands in for them), nothing written, and a figure that is not a number, or a rate
 * or cost of zero, fails the run.
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

const USAGE = `usage: node dist/bench/run.js [--quick] [name…]
       node dist/bench/run.js --list | --help

Runs the named benches (all of them with no name), one after another, printing a table each
and writing bench/results/<name>.json. Settings are environment variables (BENCH_*,
ADGATE_BENCH_*: each bench's section of README.md or bench/README.md names its own).
Unknown options are refused.
  --quick     smoke runs: tiny sizes, this build stands in for baseline commits,
              nothing is written; a figure that is NaN, or a rate or cost of 0, fails
  --list      each bench's name and what it measures
  --help, -h  this text
`
const FLAGS = ['--quick', '--list', '--help', '-h']

async function main(argv: string[]): Promise<void> {
  const flags = argv.filter((a) => a.startsWith('-'))
  const refused = flags.filter((f) => !FLAGS.includes(f))
  if (refused.length > 0) {
    process.stderr.write(`bench: unknown option ${refused.join(', ')}\n\n${USAGE}`)
    process.exitCode = 2
    return
  }
  if (flags.includes('--help') || flags.includes('-h')) {
    process.stdout.write(USAGE)
    return
  }
  const quick = flags.includes('--quick')
  const names = argv.filter((a) => !a.startsWith('-'))
  const all = available()
  if (flags.includes('--list')) {
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
    const problems = resultProblems(results)
    for (const p of problems) process.stderr.write(`bench ${name}: ${p}\n`)
    // A smoke run fails on them; a full run still keeps its figures (one dead peer of four, say).
    if (quick && problems.length > 0) throw new Error(`bench ${name}: ${problems.length} bad figures`)
    if (quick) process.stdout.write('\n--quick: results not written\n')
    else process.stdout.write(`\nwrote ${writeResults(name, results)}\n`)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})
