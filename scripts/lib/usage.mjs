// What every script's --help prints: the comment block it opens with, so the comment that
// documents a script is the only copy of its usage and cannot drift from it.
import fs from 'node:fs'

const HELP = ['--help', '-h', 'help']

/** The opening `//` comment block of the running script, without the slashes. */
export function scriptHeader(file = process.argv[1]) {
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  const from = lines.findIndex((l) => l.startsWith('//'))
  const to = lines.findIndex((l, i) => i > from && !l.startsWith('//'))
  return `${lines
    .slice(from, to)
    .map((l) => l.replace(/^\/\/ ?/, ''))
    .join('\n')}\n`
}

/**
 * Ends the process after printing the header when the first argument asks for help (exit 0) or
 * is not one of `takes` (exit 2; `undefined` in `takes` allows no argument). Returns otherwise.
 */
export function answerUsage(takes) {
  const first = process.argv[2]
  const asked = HELP.includes(first)
  if (!asked && takes.includes(first)) return
  if (asked) process.stdout.write(scriptHeader())
  else {
    const why = first === undefined ? 'an argument is needed' : `unknown argument ${JSON.stringify(first)}`
    process.stderr.write(`${why}\n\n${scriptHeader()}`)
  }
  process.exit(asked ? 0 : 2)
}
