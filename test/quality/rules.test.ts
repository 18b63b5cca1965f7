// The rule engine: validation names the file, the rule and the field; each kind passes and fails
// where it should; the shipped defaults load and pass clean generated traffic.
import { describe, expect, it } from 'vitest'
import { EVENT_TYPES } from '../../events/catalog.js'
import { generateEvents, generateFunnel } from '../../generator/funnel.js'
import { compileRules, type Rule } from '../../quality/rules.js'
import { defaultRulesPath, loadRules } from '../../quality/rules-file.js'
import { RulesError, validateRules } from '../../quality/rules-validation.js'

const compile = (rules: unknown[]) => compileRules(validateRules({ rules }, 'test.yaml'))

function problems(doc: unknown): string[] {
  try {
    validateRules(doc, 'rules.yaml')
  } catch (err) {
    expect(err).toBeInstanceOf(RulesError)
    expect((err as Error).message).toContain('rules.yaml')
    return [...(err as RulesError).problems]
  }
  throw new Error('expected the rules to be refused')
}

const INGEST = Date.UTC(2026, 10, 21, 12)
const imp = (over: Record<string, unknown> = {}) => ({
  ...generateEvents('impression', 1, 3)[0]!,
  event_time: INGEST - 1000,
  ingest_time: INGEST,
  ...over,
})

describe('rules validation', () => {
  it('names the rule and the field of every problem, all at once', () => {
    const p = problems({
      rules: [
        { name: 'a', type: 'impression', kind: 'range', field: 'cost_micro', max: 1, severity: 'reject' },
        { name: 'b', type: 'click', kind: 'pattern', field: 'landing_url', regex: '(', severity: 'flag' },
        {
          name: 'c',
          type: 'bid',
          kind: 'allowed',
          field: 'request.device.geo.country',
          set: 'iso9999',
          severity: 'flag',
        },
        { name: 'd', type: 'impression', kind: 'range', field: 'country', min: 0, severity: 'flag' },
        { name: 'e', type: 'impression', kind: 'not_null', field: 'country', severity: 'warn' },
        { name: 'a', type: 'lead', kind: 'not_null', field: 'event_id', severity: 'flag' },
        { name: 'f', type: 'conversion', kind: 'freshness', max_age: 'a week', severity: 'flag' },
        {
          name: 'g',
          type: 'conversion',
          kind: 'cross_field',
          when: { field: 'value_micros', op: 'gt' },
          require: { field: 'currency', op: 'not_null' },
          severity: 'reject',
        },
        {
          name: 'h',
          type: 'impression',
          kind: 'not_null',
          field: 'country',
          severity: 'flag',
          colour: 'red',
        },
        { name: 'bad name!', type: 'impression', kind: 'not_null', field: 'country', severity: 'flag' },
      ],
    })
    expect(p).toEqual([
      'rule a (#1): field: impression events have no field "cost_micro" (see schemas/impression.v2.avsc)',
      expect.stringMatching(/^rule b \(#2\): regex: /),
      'rule c (#3): set: must be one of iso3166_alpha2, iso3166_alpha3, iso4217',
      'rule d (#4): field: "country" of impression is a string, needs number',
      'rule e (#5): severity: must be reject or flag',
      'rule a (#6): name: appears twice',
      'rule a (#6): type: "lead" is not bid, impression, click, conversion or *',
      'rule f (#7): max_age: must be a duration such as 500ms, 30s, 10m, 2h or 30d',
      'rule g (#8): when.value: gt needs a number',
      'rule h (#9): colour: not a key of a not_null rule',
      'rule bad name! (#10): name: must be 1-64 of [A-Za-z0-9_.-]',
    ])
  })

  it('refuses a document without a rules list, and unknown top-level keys', () => {
    expect(problems([])).toEqual(['must be a mapping with a `rules` list'])
    expect(problems({ rule: [] })).toEqual([
      'unknown top-level key "rule" (only "rules")',
      '`rules` must be a list',
    ])
  })

  it('refuses an unknown top-level key beside a valid list, and a condition missing its op', () => {
    const rule = { name: 'a', type: '*', kind: 'not_null', field: 'event_id', severity: 'flag' }
    expect(problems({ rules: [rule], colour: 'red' })).toEqual([
      'unknown top-level key "colour" (only "rules")',
    ])
    expect(
      problems({
        rules: [
          {
            name: 'b',
            type: ['click'],
            kind: 'cross_field',
            when: { field: 'event_id', op: 'null', value: 1 },
            require: { field: 'event_id' },
            severity: 'reject',
          },
        ],
      }),
    ).toEqual([
      'rule b (#1): when.value: null takes no value',
      'rule b (#1): require.op: must be one of not_null, null, eq, ne, gt, gte, lt, lte, in',
    ])
  })

  it('the shipped defaults load, and cover every kind and every event type', () => {
    const rules = loadRules(defaultRulesPath())
    expect(new Set(rules.map((r) => r.kind))).toEqual(
      new Set(['not_null', 'range', 'allowed', 'pattern', 'freshness', 'cross_field']),
    )
    const set = compileRules(rules)
    for (const t of EVENT_TYPES) expect(set.byType[t], t).not.toBeNull()
    expect(rules.filter((r) => r.severity === 'reject').length).toBeGreaterThan(0)
    expect(rules.filter((r) => r.severity === 'flag').length).toBeGreaterThan(0)
  })

  it('clean generated traffic of several seeds passes every default rule', () => {
    const set = compileRules(loadRules(defaultRulesPath()))
    for (const seed of [1, 2, 3]) {
      const f = generateFunnel({ seed, bids: 3000 })
      for (const t of EVENT_TYPES) {
        for (const e of f[t]) {
          const view = { ...e, ingest_time: (e.event_time as number) + 5000 }
          expect(set.byType[t]!.evaluate(view), `${t} ${e.event_id}`).toBeNull()
        }
      }
    }
  })
})

describe('rule kinds', () => {
  it('range: inclusive bounds, null passes', () => {
    const r = compile([
      {
        name: 'cost',
        type: 'impression',
        kind: 'range',
        field: 'cost_micros',
        min: 0,
        max: 1000,
        severity: 'reject',
      },
    ])
    const ev = r.byType.impression!
    expect(ev.evaluate(imp({ cost_micros: 1000 }))).toBeNull()
    expect(ev.evaluate(imp({ cost_micros: 0 }))).toBeNull()
    expect(ev.evaluate(imp({ cost_micros: 1001 }))).toEqual({
      reject: {
        rule: 'cost',
        field: 'cost_micros',
        reason: 'rule cost: cost_micros must be ≥ 0 and ≤ 1000, got 1001',
      },
      flags: null,
    })
    expect(r.byType.click).toBeNull()
    expect(ev.fields).toEqual(['cost_micros'])
  })

  it('allowed: ISO sets and lists; the flags of several rules are joined', () => {
    const r = compile([
      {
        name: 'country',
        type: 'impression',
        kind: 'allowed',
        field: 'country',
        set: 'iso3166_alpha2',
        severity: 'flag',
      },
      {
        name: 'device',
        type: 'impression',
        kind: 'allowed',
        field: 'device_type',
        values: ['MOBILE'],
        severity: 'flag',
      },
      {
        name: 'cur',
        type: 'impression',
        kind: 'allowed',
        field: 'currency',
        set: 'iso4217',
        severity: 'reject',
      },
    ]).byType.impression!
    expect(r.evaluate(imp({ country: 'DE', device_type: 'MOBILE' }))).toBeNull()
    expect(r.evaluate(imp({ country: null, device_type: 'MOBILE' }))).toBeNull()
    expect(r.evaluate(imp({ country: 'XX', device_type: 'CTV' }))).toEqual({
      reject: null,
      flags: 'country,device',
    })
    expect(r.evaluate(imp({ country: 'XX', device_type: 'MOBILE', currency: 'EUR' }))).toEqual({
      reject: null,
      flags: 'country',
    })
    expect(r.evaluate(imp({ currency: 'XYZ' }))?.reject?.reason).toBe(
      'rule cur: currency must be an iso4217 code, got "XYZ"',
    )
  })

  it('pattern and not_null, on nested fields too', () => {
    const r = compile([
      {
        name: 'dom',
        type: 'bid',
        kind: 'pattern',
        field: 'request.site.domain',
        regex: '^[a-z]+\\.example$',
        severity: 'flag',
      },
      { name: 'geo', type: 'bid', kind: 'not_null', field: 'request.device.geo.country', severity: 'reject' },
    ]).byType.bid!
    const bid = generateEvents('bid', 1, 5)[0]!
    const request = bid.request as Record<string, unknown>
    const withRequest = (over: Record<string, unknown>) => ({ ...bid, request: { ...request, ...over } })
    expect(r.evaluate(bid)).toBeNull()
    expect(r.fields).toEqual(['request'])
    expect(r.evaluate(withRequest({ site: { ...(request.site as object), domain: 'Bad Domain' } }))).toEqual({
      reject: null,
      flags: 'dom',
    })
    expect(r.evaluate(withRequest({ site: null }))).toBeNull()
    expect(r.evaluate(withRequest({ device: null }))?.reject?.rule).toBe('geo')
  })

  it('pattern: each string judged on its own, however often it and others were seen before', () => {
    const r = compile([
      {
        name: 'dom',
        type: 'impression',
        kind: 'pattern',
        field: 'site_domain',
        regex: '^[a-z]+\\.example$',
        severity: 'flag',
      },
    ]).byType.impression!
    const flags = (site_domain: string) => r.evaluate(imp({ site_domain }))?.flags ?? null
    // More distinct strings than the remembered results hold, valid and not, each asked twice.
    for (let i = 0; i < 5000; i++) {
      const good = `${String.fromCharCode(97 + (i % 26)).repeat(1 + (i % 7))}${'x'.repeat(i % 50)}.example`
      expect(flags(good)).toBeNull()
      expect(flags(`${good}!`)).toBe('dom')
      expect(flags(good)).toBeNull()
    }
    // A string longer than the remembered ones, both ways.
    expect(flags(`${'a'.repeat(300)}.example`)).toBeNull()
    expect(flags(`${'a'.repeat(300)}.exampl`)).toBe('dom')
  })

  it('freshness: measured from the ingest time, both ways', () => {
    const r = compile([
      { name: 'future', type: '*', kind: 'freshness', max_future: '10m', severity: 'reject' },
      { name: 'stale', type: '*', kind: 'freshness', max_age: '30d', severity: 'flag' },
    ]).byType.impression!
    expect(r.fields).toEqual(['event_time', 'ingest_time'])
    expect(r.evaluate(imp({ event_time: INGEST + 10 * 60_000 }))).toBeNull()
    expect(r.evaluate(imp({ event_time: INGEST + 10 * 60_000 + 1 }))?.reject?.reason).toBe(
      'rule future: event_time is 600 s after the ingest time (at most 600 s allowed)',
    )
    expect(r.evaluate(imp({ event_time: INGEST - 30 * 86_400_000 }))).toBeNull()
    expect(r.evaluate(imp({ event_time: INGEST - 31 * 86_400_000 }))).toEqual({
      reject: null,
      flags: 'stale',
    })
  })

  it('cross_field: the condition only binds when `when` holds; a custom message replaces the text', () => {
    const r = compile([
      {
        name: 'cur',
        type: 'conversion',
        kind: 'cross_field',
        when: { field: 'value_micros', op: 'gt', value: 0 },
        require: { field: 'currency', op: 'not_null' },
        severity: 'reject',
      },
      {
        name: 'purchase_valued',
        type: 'conversion',
        kind: 'cross_field',
        when: { field: 'conversion_type', op: 'in', value: ['PURCHASE'] },
        require: { field: 'value_micros', op: 'gt', value: 0 },
        severity: 'flag',
        message: 'purchases carry a value',
      },
    ]).byType.conversion!
    const c = generateEvents('conversion', 1, 2)[0]!
    const base = { ...c, conversion_type: 'SIGNUP' }
    expect(r.evaluate({ ...base, value_micros: 0, currency: null })).toBeNull()
    expect(r.evaluate({ ...base, value_micros: 5, currency: 'USD' })).toBeNull()
    expect(r.evaluate({ ...base, value_micros: 5, currency: null })?.reject).toEqual({
      rule: 'cur',
      field: 'currency',
      reason: 'rule cur: currency is set is required when value_micros > 0',
    })
    expect(r.evaluate({ ...base, conversion_type: 'PURCHASE', value_micros: 0, currency: null })).toEqual({
      reject: null,
      flags: 'purchase_valued',
    })
  })

  it('rules survive the trip to the workers as JSON', () => {
    const rules = loadRules(defaultRulesPath())
    const back = JSON.parse(JSON.stringify(rules)) as Rule[]
    const a = compileRules(rules).byType.impression!
    const b = compileRules(back).byType.impression!
    const bad = imp({ country: 'XX', currency: 'USD' })
    expect(b.evaluate(bad)).toEqual(a.evaluate(bad))
  })
})
