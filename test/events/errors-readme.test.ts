// The README's status table ("Responses: the client always knows the fate of every event") is the
// error table of events/errors.ts as users read it: every code is in the row of its own status.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERRORS, type ErrorCode } from '../../events/errors.js'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')

/** Each code named in the status table, with the statuses of the row(s) naming it. */
function statusTable(): Map<string, number[]> {
  const start = readme.indexOf('### Responses: the client always knows the fate of every event')
  const lines = readme.slice(start).split('\n').slice(1)
  const rows = lines.slice(lines.findIndex((l) => l.startsWith('|'))).filter((_, i, all) => {
    const end = all.findIndex((l) => !l.startsWith('|'))
    return end === -1 || i < end
  })
  const codes = new Map<string, number[]>()
  for (const row of rows.slice(2)) {
    const [, statusCell, codeCell] = row.split(/(?<!\\)\|/)
    const statuses = [...statusCell!.matchAll(/`(\d{3})`/g)].map((m) => Number(m[1]))
    // "A / B" rows pair their statuses and codes in order ("`401` / `403`").
    const groups = codeCell!.split(' / ')
    groups.forEach((group, i) => {
      for (const m of group.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) {
        const status = statuses[groups.length === statuses.length ? i : 0]!
        codes.set(m[1]!, [...(codes.get(m[1]!) ?? []), status])
      }
    })
  }
  return codes
}

describe('the README status table', () => {
  const table = statusTable()

  it('is found', () => {
    expect(table.size).toBeGreaterThan(20)
  })

  it.each(Object.keys(ERRORS) as ErrorCode[])('lists %s under its status', (code) => {
    expect(table.get(code), `${code} is not in the README status table`).toBeDefined()
    expect(table.get(code)).toContain(ERRORS[code].status)
  })

  it('names no code the error table does not have', () => {
    expect([...table.keys()].filter((c) => !(c in ERRORS))).toEqual([])
  })
})
