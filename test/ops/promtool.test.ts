// ops/prometheus with Prometheus' own tool: the rules and the example config are valid, every
// alert's unit tests pass, and every alert has a test where it must fire and one where it must not.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { presentOrSkipped } from '../support/services.js'

const OPS = fileURLToPath(new URL('../../ops/prometheus/', import.meta.url))
const RULES = ['rules/adgate-recording.yml', 'rules/adgate-alerts.yml']
const TESTS = readdirSync(`${OPS}tests`)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => `tests/${f}`)

const hasPromtool = presentOrSkipped('promtool')

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: OPS, encoding: 'utf8', timeout: 280_000 })
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` }
}

interface AlertTest {
  alertname: string
  exp_alerts?: unknown[]
}

describe.skipIf(!hasPromtool)('Prometheus rules (promtool)', () => {
  it('check config: the example configuration and the rule files it loads', () => {
    const r = promtool('check', 'config', 'prometheus.yml')
    expect(r.status, r.out).toBe(0)
  })

  it('check rules', () => {
    const r = promtool('check', 'rules', ...RULES)
    expect(r.status, r.out).toBe(0)
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/)
  })

  it('test rules: synthetic series fire, and do not fire, each alert', { timeout: 300_000 }, () => {
    const r = promtool('test', 'rules', ...TESTS)
    expect(r.status, r.out).toBe(0)
    expect(r.out).not.toMatch(/FAILED/)
  })

  it('every alert has a case where it must fire and one where it must not', () => {
    const alerts = RULES.flatMap((f) =>
      (
        parse(readFileSync(`${OPS}${f}`, 'utf8')) as { groups: { rules: { alert?: string }[] }[] }
      ).groups.flatMap((g) => g.rules.flatMap((rule) => (rule.alert ? [rule.alert] : []))),
    )
    expect(alerts.length).toBeGreaterThanOrEqual(16)
    const cases = TESTS.flatMap((f) =>
      (
        parse(readFileSync(`${OPS}${f}`, 'utf8')) as { tests: { alert_rule_test?: AlertTest[] }[] }
      ).tests.flatMap((t) => t.alert_rule_test ?? []),
    )
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert)
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert}: no test where it fires`,
      ).toBe(true)
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert}: no test where it must stay silent`,
      ).toBe(true)
    }
  })
})
