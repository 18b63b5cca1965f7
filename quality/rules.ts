import { EVENT_TYPES, type EventType, isEventType } from '../events/catalog.js'
import { type FieldModel, recordOf, type SchemaNode } from '../events/schema-model.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import { ISO3166_ALPHA2, ISO3166_ALPHA3, ISO4217 } from './iso-codes.js'

/**
 * Data-quality rules: the second layer after schema validation. A rules document (YAML or JSON,
 * see quality/default-rules.yaml) is validated once — every problem reported with the file, the
 * rule and the field — then compiled per event type into one function (`new Function`, like the
 * schema normalizers) that the decoder workers call per event on the hot path.
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

export class RulesError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join('\n  ')}`}`)
  }
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/
const KINDS: readonly Kind[] = ['not_null', 'range', 'allowed', 'pattern', 'freshness', 'cross_field']
const OPS: readonly Op[] = ['not_null', 'null', 'eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in']
const COMMON_KEYS = ['name', 'type', 'kind', 'severity', 'message']
const KIND_KEYS: Readonly<Record<Kind, readonly string[]>> = {
  not_null: ['field'],
  range: ['field', 'min', 'max'],
  allowed: ['field', 'values', 'set'],
  pattern: ['field', 'regex'],
  freshness: ['field', 'max_future', 'max_age'],
  cross_field: ['when', 'require'],
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

function durationMs(raw: unknown): number | null {
  if (typeof raw === 'number' && Number.isInteger(raw) && raw >= 0) return raw
  if (typeof raw !== 'string') return null
  const m = /^(\d+)\s*(ms|s|m|h|d)$/.exec(raw.trim())
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : null
}

/** What a dotted path names in the event type's schema: a primitive kind, or null when absent. */
type FieldKind = 'number' | 'string' | 'enum' | 'boolean' | 'other'

function fieldKind(type: EventType, path: string): FieldKind | null {
  let node: SchemaNode = EVENT_SCHEMAS[type].model
  for (const seg of path.split('.')) {
    const f: FieldModel | undefined = recordOf(node)?.fields.find((x) => x.name === seg)
    if (f === undefined) return null
    node = f.node
  }
  return primitiveKind(node)
}

function primitiveKind(node: SchemaNode): FieldKind {
  switch (node.kind) {
    case 'optional':
      return primitiveKind(node.inner)
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return 'number'
    case 'string':
    case 'enum':
    case 'boolean':
      return node.kind
    default:
      return 'other'
  }
}

/**
 * Checks a parsed rules document (the YAML or JSON value) and returns its rules; every problem
 * found is reported at once, each naming the rule and the field.
 */
export function validateRules(doc: unknown, file: string): Rule[] {
  const problems: string[] = []
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new RulesError(file, ['must be a mapping with a `rules` list'])
  for (const k of Object.keys(doc))
    if (k !== 'rules') problems.push(`unknown top-level key "${k}" (only "rules")`)
  const list = (doc as { rules?: unknown }).rules
  if (!Array.isArray(list)) throw new RulesError(file, [...problems, '`rules` must be a list'])
  const rules: Rule[] = []
  const names = new Set<string>()
  list.forEach((raw, i) => {
    const where = (r: Record<string, unknown>) =>
      typeof r.name === 'string' ? `rule ${r.name} (#${i + 1})` : `rule #${i + 1}`
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`rule #${i + 1}: must be a mapping`)
      return
    }
    const r = raw as Record<string, unknown>
    const at = where(r)
    const bad = (field: string, why: string) => problems.push(`${at}: ${field}: ${why}`)
    const before = problems.length
    if (typeof r.name !== 'string' || !NAME.test(r.name)) bad('name', 'must be 1-64 of [A-Za-z0-9_.-]')
    else if (names.has(r.name)) bad('name', 'appears twice')
    else names.add(r.name)
    const kind = r.kind as Kind
    if (!KINDS.includes(kind)) {
      bad('kind', `must be one of ${KINDS.join(', ')}`)
      return
    }
    for (const k of Object.keys(r))
      if (!COMMON_KEYS.includes(k) && !KIND_KEYS[kind].includes(k)) bad(k, `not a key of a ${kind} rule`)
    if (r.severity !== 'reject' && r.severity !== 'flag') bad('severity', 'must be reject or flag')
    if (r.message !== undefined && typeof r.message !== 'string') bad('message', 'must be a string')
    const typeList = r.type === '*' ? [...EVENT_TYPES] : Array.isArray(r.type) ? r.type : [r.type]
    const types: EventType[] = []
    for (const t of typeList) {
      if (typeof t === 'string' && isEventType(t)) types.push(t)
      else bad('type', `${JSON.stringify(t)} is not bid, impression, click, conversion or *`)
    }
    if (types.length === 0 && problems.length === before) bad('type', 'names no event type')
    const checkField = (key: string, path: unknown, allowed: readonly FieldKind[] | null): string => {
      if (typeof path !== 'string' || path === '') {
        bad(key, 'must name a field')
        return ''
      }
      for (const t of types) {
        const k = fieldKind(t, path)
        if (k === null) bad(key, `${t} events have no field "${path}" (see schemas/${EVENT_SCHEMAS[t].file})`)
        else if (allowed !== null && !allowed.includes(k))
          bad(
            key,
            `"${path}" of ${t} is ${k === 'other' ? 'not a scalar' : `a ${k}`}, needs ${allowed.join(' or ')}`,
          )
      }
      return path
    }
    const rule: Record<string, unknown> = {
      name: r.name,
      types,
      kind,
      severity: r.severity,
      message: r.message,
    }
    switch (kind) {
      case 'not_null':
        rule.field = checkField('field', r.field, null)
        break
      case 'range':
        rule.field = checkField('field', r.field, ['number'])
        for (const k of ['min', 'max'] as const)
          if (r[k] !== undefined && (typeof r[k] !== 'number' || !Number.isFinite(r[k])))
            bad(k, 'must be a number')
        if (r.min === undefined && r.max === undefined) bad('min', 'a range needs min, max or both')
        if (typeof r.min === 'number' && typeof r.max === 'number' && r.min > r.max)
          bad('max', `must be ≥ min (${r.min})`)
        rule.min = r.min
        rule.max = r.max
        break
      case 'allowed':
        rule.field = checkField('field', r.field, ['string', 'enum', 'number'])
        if ((r.values === undefined) === (r.set === undefined)) bad('values', 'give either values or set')
        else if (r.values !== undefined) {
          if (
            !Array.isArray(r.values) ||
            r.values.length === 0 ||
            !r.values.every((v) => typeof v === 'string' || typeof v === 'number')
          )
            bad('values', 'must be a non-empty list of strings or numbers')
          rule.values = r.values
        } else {
          if (typeof r.set !== 'string' || !(r.set in ISO_SETS))
            bad('set', `must be one of ${Object.keys(ISO_SETS).join(', ')}`)
          rule.set = r.set
        }
        break
      case 'pattern':
        rule.field = checkField('field', r.field, ['string'])
        if (typeof r.regex !== 'string') bad('regex', 'must be a regular expression (a string)')
        else {
          try {
            new RegExp(r.regex, 'u')
          } catch (err) {
            bad('regex', (err as Error).message)
          }
        }
        rule.regex = r.regex
        break
      case 'freshness': {
        rule.field = checkField('field', r.field ?? 'event_time', ['number'])
        const future = r.max_future === undefined ? undefined : durationMs(r.max_future)
        const age = r.max_age === undefined ? undefined : durationMs(r.max_age)
        if (future === null) bad('max_future', 'must be a duration such as 500ms, 30s, 10m, 2h or 30d')
        if (age === null) bad('max_age', 'must be a duration such as 500ms, 30s, 10m, 2h or 30d')
        if (future === undefined && age === undefined)
          bad('max_future', 'freshness needs max_future, max_age or both')
        rule.maxFutureMs = future ?? undefined
        rule.maxAgeMs = age ?? undefined
        break
      }
      case 'cross_field': {
        const cond = (key: 'when' | 'require'): Condition | undefined => {
          const c = r[key] as Record<string, unknown> | undefined
          if (c === null || typeof c !== 'object' || Array.isArray(c)) {
            bad(key, 'must be a mapping {field, op, value}')
            return undefined
          }
          for (const k of Object.keys(c))
            if (!['field', 'op', 'value'].includes(k)) bad(`${key}.${k}`, 'not a key of a condition')
          const field = checkField(`${key}.field`, c.field, null)
          const op = c.op as Op
          if (!OPS.includes(op)) bad(`${key}.op`, `must be one of ${OPS.join(', ')}`)
          else if (op === 'null' || op === 'not_null') {
            if (c.value !== undefined) bad(`${key}.value`, `${op} takes no value`)
          } else if (op === 'in') {
            if (!Array.isArray(c.value) || c.value.length === 0)
              bad(`${key}.value`, 'in needs a non-empty list')
          } else if (['gt', 'gte', 'lt', 'lte'].includes(op) && typeof c.value !== 'number')
            bad(`${key}.value`, `${op} needs a number`)
          else if (c.value === undefined) bad(`${key}.value`, `${op} needs a value`)
          return { field, op, value: c.value }
        }
        rule.when = cond('when')
        rule.require = cond('require')
        rule.field = (rule.require as Condition | undefined)?.field ?? ''
        break
      }
    }
    if (problems.length === before) rules.push(rule as unknown as Rule)
  })
  if (problems.length > 0) throw new RulesError(file, problems)
  return rules
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
      return `typeof x === 'string' && !${c(new RegExp(r.regex!, 'u'))}.test(x)`
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
