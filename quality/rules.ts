import { EVENT_TYPES, type EventType } from '../events/catalog.js'
import { ISO3166_ALPHA2, ISO3166_ALPHA3, ISO4217 } from './iso-codes.js'

/**
 * Data-quality rules: the second layer after schema validation. A rules document (YAML or JSON,
 * see quality/default-rules.yaml) is validated once against its JSON Schema (rules-validation.ts:
 * every problem reported with the file, the rule and the field), then compiled per event type
 * into one function (`new Function`, like the schema normalizers) that the decoder workers call
 * per event on the hot path.
 *
 * Kinds: not_null, range, allowed (a list or an ISO set), pattern, freshness (event time against
 * the gateway's ingest time) and cross_field (`when` one field satisfies a condition, `require`
 * another to). Severity `reject` turns the event into a per-event error and a dead letter; `flag` keeps
 * it and carries the rule's name with it into storage.
 */
export type Severity = 'reject' | 'flag'
export type Kind = 'not_null' | 'range' | 'allowed' | 'pattern' | 'freshness' | 'cross_field'
export type Op = 'not_null' | 'null' | 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte' | 'in'

export interface Condition {
  readonly field: string
  readonly op: Op
  readonly value?: unknown
}

export interface Rule {
  readonly name: string
  readonly types: readonly EventType[]
  readonly kind: Kind
  readonly severity: Severity
  /** The field checked (for cross_field: the `require` field). */
  readonly field: string
  readonly message?: string
  readonly min?: number
  readonly max?: number
  readonly values?: readonly (string | number)[]
  readonly set?: IsoSet
  readonly regex?: string
  /** freshness: ms the event time may be ahead of ingest time / behind it. */
  readonly maxFutureMs?: number
  readonly maxAgeMs?: number
  readonly when?: Condition
  readonly require?: Condition
}

export type IsoSet = 'iso3166_alpha2' | 'iso3166_alpha3' | 'iso4217'
const ISO_SETS: Readonly<Record<IsoSet, readonly string[]>> = {
  iso3166_alpha2: ISO3166_ALPHA2,
  iso3166_alpha3: ISO3166_ALPHA3,
  iso4217: ISO4217,
}

/** The first failing reject rule of an event, as the client and the dead-letter topic see it. */
export interface RuleReject {
  readonly rule: string
  readonly field: string
  readonly reason: string
}

/** null from `evaluate` means the event passed every rule (the common case allocates nothing). */
export interface RuleResult {
  readonly reject: RuleReject | null
  /** Names of the failed flag rules, comma separated (rule names cannot hold commas). */
  readonly flags: string | null
}

export interface TypeRules {
  /** Top-level fields the rules read: a projection of the event to these is enough to evaluate. */
  readonly fields: readonly string[]
  readonly rules: readonly Rule[]
  evaluate(view: Readonly<Record<string, unknown>>): RuleResult | null
}

export interface RuleSet {
  readonly rules: readonly Rule[]
  /** Per event type; null when no rule applies to it. */
  readonly byType: Readonly<Record<EventType, TypeRules | null>>
}

/** Compiles validated rules: one evaluate function per event type. */
export function compileRules(rules: readonly Rule[]): RuleSet {
  const byType = {} as Record<EventType, TypeRules | null>
  for (const t of EVENT_TYPES) {
    const mine = rules.filter((r) => r.types.includes(t))
    byType[t] = mine.length === 0 ? null : compileType(mine)
  }
  return { rules, byType }
}

function access(path: string): string {
  const segs = path.split('.')
  return `v[${JSON.stringify(segs[0])}]${segs
    .slice(1)
    .map((s) => `?.[${JSON.stringify(s)}]`)
    .join('')}`
}

function condExpr(c: Condition, k: number, consts: unknown[]): string {
  const x = access(c.field)
  const ref = () => {
    consts.push(c.value)
    return `C[${consts.length - 1}]`
  }
  switch (c.op) {
    case 'not_null':
      return `(${x} != null)`
    case 'null':
      return `(${x} == null)`
    case 'eq':
      return `(${x} === ${ref()})`
    case 'ne':
      return `(${x} !== ${ref()})`
    case 'gt':
      return `(${x} > ${ref()})`
    case 'gte':
      return `(${x} >= ${ref()})`
    case 'lt':
      return `(${x} < ${ref()})`
    case 'lte':
      return `(${x} <= ${ref()})`
    case 'in':
      consts.push(new Set(c.value as unknown[]))
      return `C[${consts.length - 1}].has(${x})`
  }
  throw new Error(`op ${c.op} at ${k}`)
}

/** A JS expression, true when rule `r` fails for the value `x` (its field) of event `v`. */
function failExpr(r: Rule, k: number, consts: unknown[]): string {
  const c = (value: unknown) => {
    consts.push(value)
    return `C[${consts.length - 1}]`
  }
  switch (r.kind) {
    case 'not_null':
      return 'x == null'
    case 'range': {
      const parts: string[] = []
      if (r.min !== undefined) parts.push(`x < ${c(r.min)}`)
      if (r.max !== undefined) parts.push(`x > ${c(r.max)}`)
      return `typeof x === 'number' && (${parts.join(' || ')})`
    }
    case 'allowed':
      return `x != null && !${c(new Set(r.set ? ISO_SETS[r.set] : r.values))}.has(x)`
    case 'pattern':
      return `typeof x === 'string' && !${c(patternTest(new RegExp(r.regex!, 'u')))}(x)`
    case 'freshness': {
      const parts: string[] = []
      if (r.maxFutureMs !== undefined) parts.push(`x - v.ingest_time > ${c(r.maxFutureMs)}`)
      if (r.maxAgeMs !== undefined) parts.push(`v.ingest_time - x > ${c(r.maxAgeMs)}`)
      return `typeof x === 'number' && (${parts.join(' || ')})`
    }
    case 'cross_field':
      return `${condExpr(r.when!, k, consts)} && !${condExpr(r.require!, k, consts)}`
  }
}

/**
 * A pattern's test, remembered per string: the fields patterns check (domains, URLs) repeat, and
 * a Map lookup costs a fraction of a test of a `u` regex. Per compiled rule set (a reload starts
 * afresh); cleared when full, so memory stays bounded whatever the traffic.
 */
const PATTERN_MEMO_ENTRIES = 4096
const PATTERN_MEMO_MAX_LENGTH = 256

function patternTest(re: RegExp): (x: string) => boolean {
  const memo = new Map<string, boolean>()
  return (x) => {
    let ok = memo.get(x)
    if (ok === undefined) {
      ok = re.test(x)
      if (x.length <= PATTERN_MEMO_MAX_LENGTH) {
        if (memo.size >= PATTERN_MEMO_ENTRIES) memo.clear()
        memo.set(x, ok)
      }
    }
    return ok
  }
}

function compileType(rules: readonly Rule[]): TypeRules {
  const consts: unknown[] = []
  const lines: string[] = []
  rules.forEach((r, k) => {
    const check = `x = ${access(r.field)}; if (${failExpr(r, k, consts)}) `
    lines.push(
      r.severity === 'reject'
        ? `${check}return R(${k}, x, v)`
        : `${check}f = f === null ? N[${k}] : f + ',' + N[${k}]`,
    )
  })
  const body = `'use strict'
return function evaluate(v) {
  let f = null, x
  ${lines.join('\n  ')}
  return f === null ? null : { reject: null, flags: f }
}`
  const names = rules.map((r) => r.name)
  // Only the failure path allocates: the result and its message.
  const reject = (k: number, x: unknown, v: Record<string, unknown>): RuleResult => {
    const r = rules[k]!
    return {
      reject: { rule: r.name, field: r.field, reason: `rule ${r.name}: ${r.message ?? describe(r, x, v)}` },
      flags: null,
    }
  }
  const evaluate = new Function('C', 'R', 'N', body)(consts, reject, names) as TypeRules['evaluate']
  const fields = new Set<string>()
  for (const r of rules) {
    fields.add(r.field.split('.')[0]!)
    if (r.when) fields.add(r.when.field.split('.')[0]!)
    if (r.kind === 'freshness') fields.add('ingest_time')
  }
  return { fields: [...fields], rules, evaluate }
}

function show(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x.length > 64 ? `${x.slice(0, 64)}…` : x)
  return String(x)
}

const OP_TEXT: Readonly<Record<Op, string>> = {
  not_null: 'is set',
  null: 'is null',
  eq: '=',
  ne: '≠',
  gt: '>',
  gte: '≥',
  lt: '<',
  lte: '≤',
  in: 'is one of',
}

function condText(c: Condition): string {
  return c.value === undefined
    ? `${c.field} ${OP_TEXT[c.op]}`
    : `${c.field} ${OP_TEXT[c.op]} ${JSON.stringify(c.value)}`
}

/** The reason text of a failed rule (also used for flags in tests and docs). */
export function describe(r: Rule, x: unknown, v: Readonly<Record<string, unknown>>): string {
  switch (r.kind) {
    case 'not_null':
      return `${r.field} must be set`
    case 'range': {
      const bounds = [r.min !== undefined ? `≥ ${r.min}` : '', r.max !== undefined ? `≤ ${r.max}` : '']
        .filter(Boolean)
        .join(' and ')
      return `${r.field} must be ${bounds}, got ${show(x)}`
    }
    case 'allowed':
      return `${r.field} must be ${r.set ? `an ${r.set} code` : `one of ${r.values!.join(', ')}`}, got ${show(x)}`
    case 'pattern':
      return `${r.field} must match /${r.regex}/, got ${show(x)}`
    case 'freshness': {
      const ingest = v.ingest_time as number
      const t = x as number
      return t > ingest
        ? `${r.field} is ${Math.round((t - ingest) / 1000)} s after the ingest time (at most ${Math.round((r.maxFutureMs ?? 0) / 1000)} s allowed)`
        : `${r.field} is ${((ingest - t) / 86_400_000).toFixed(1)} days before the ingest time (at most ${((r.maxAgeMs ?? 0) / 86_400_000).toFixed(1)} allowed)`
    }
    case 'cross_field':
      return `${condText(r.require!)} is required when ${condText(r.when!)}`
  }
}
