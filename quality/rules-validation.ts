import { Ajv, type ErrorObject } from 'ajv'
import { EVENT_TYPES, type EventType } from '../events/catalog.js'
import { type FieldModel, recordOf, type SchemaNode } from '../events/schema-model.js'
import { EVENT_SCHEMAS } from '../events/schemas.js'
import type { Condition, IsoSet, Kind, Rule } from './rules.js'
import { DURATION, KIND_KEYS, NAME, RULES_DOCUMENT_SCHEMA } from './rules-schema.js'

export class RulesError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}: ${problems.length === 1 ? problems[0] : `\n  ${problems.join('\n  ')}`}`)
  }
}

const ajv = new Ajv({
  allErrors: true,
  verbose: true,
  strict: true,
  strictRequired: false,
  allowUnionTypes: true,
})
for (const keyword of ['errorText', 'errorAt', 'additionalText'])
  ajv.addKeyword({ keyword, schemaType: 'string' })
const validateDocument = ajv.compile(RULES_DOCUMENT_SCHEMA)

/** One problem found in a rule: the key it is reported under, and what is allowed there. */
interface Problem {
  readonly rule: number
  readonly key: string
  readonly text: string
  /** The text is the schema's errorText, not ajv's own (which it replaces at the same key). */
  readonly explained?: boolean
}

/**
 * Checks a parsed rules document (the YAML or JSON value) against RULES_DOCUMENT_SCHEMA, then
 * what the schema cannot say, and returns its rules; every problem found is reported at once,
 * each naming the rule and the field.
 */
export function validateRules(doc: unknown, file: string): Rule[] {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new RulesError(file, ['must be a mapping with a `rules` list'])
  const found: Problem[] = []
  const top: string[] = []
  if (!validateDocument(doc)) {
    for (const e of validateDocument.errors ?? []) {
      const p = problemOf(e)
      if (p === null) continue
      if (p.rule >= 0) found.push(p)
      else top.push(p.text)
    }
  }
  const list = (doc as { rules?: unknown }).rules
  // Unknown top-level keys first, then what is wrong with the list.
  top.sort((a, b) => Number(b.startsWith('unknown')) - Number(a.startsWith('unknown')))
  if (!Array.isArray(list)) throw new RulesError(file, [...new Set(top)])
  const rules = list.map((raw, i) => checkRule(raw, i, found))
  const names = new Set<unknown>()
  list.forEach((raw, i) => {
    const name = (raw as { name?: unknown } | null)?.name
    if (typeof name !== 'string' || !NAME.test(name)) return
    if (names.has(name)) found.push({ rule: i, key: 'name', text: 'appears twice' })
    names.add(name)
  })
  if (found.length === 0 && top.length === 0) return rules as Rule[]
  throw new RulesError(file, [...new Set(top), ...report(list, found)])
}

/** An ajv error as a problem (null: a summary of errors reported on their own). */
function problemOf(e: ErrorObject): Problem | null {
  if (e.keyword === 'if') return null
  const segs = e.instancePath.split('/').slice(1)
  const schema = (e.parentSchema ?? {}) as Record<string, unknown>
  if (segs.length === 0) {
    if (e.keyword === 'additionalProperties')
      return {
        rule: -1,
        key: '',
        text: `unknown top-level key "${e.params.additionalProperty}" (only "rules")`,
      }
    return { rule: -1, key: '', text: '`rules` must be a list' }
  }
  const rule = Number(segs[1])
  // Keys of the rule, without list indexes: rules/3/when/op → when.op; rules/3/type/0 → type.
  const path = segs.slice(2).filter((s) => !/^\d+$/.test(s))
  let text = typeof schema.errorText === 'string' ? schema.errorText : (e.message ?? 'is not allowed')
  if (e.keyword === 'additionalProperties') {
    path.push(String(e.params.additionalProperty))
    text = String(schema.additionalText)
  } else if (e.keyword === 'required') {
    const missing = String(e.params.missingProperty)
    const props = (schema.properties ?? {}) as Record<string, { errorText?: string }>
    path.push(missing)
    text = props[missing]?.errorText ?? 'is required'
  } else if (typeof schema.errorAt === 'string') path.push(schema.errorAt)
  if (path.length === 0 && e.keyword === 'type') text = String(schema.errorText)
  return {
    rule,
    key: path.join('.'),
    text: text.replace('{value}', JSON.stringify(e.data) ?? 'undefined'),
    explained: text !== e.message,
  }
}

/** The order a rule's problems are listed in: its keys as a rules file is read. */
const KEY_ORDER = [
  'name',
  'kind',
  'severity',
  'message',
  'type',
  'field',
  'min',
  'max',
  'values',
  'set',
  'regex',
  'max_future',
  'max_age',
  'when',
  'require',
]

function rank(key: string): number {
  const [head = '', sub] = key.split('.')
  const at = KEY_ORDER.indexOf(head)
  // Keys that are none of these are unknown keys: listed after the kind that does not have them.
  if (at === -1) return 1.5
  const subAt = sub === undefined ? 0 : 1 + ['field', 'op', 'value'].indexOf(sub)
  return at + subAt / 10
}

function report(list: unknown[], found: Problem[]): string[] {
  const unique = new Map<string, Problem>()
  for (const p of found) {
    const id = `${p.rule} ${p.key}`
    if (!unique.has(id) || (p.explained && !unique.get(id)!.explained)) unique.set(id, p)
  }
  return [...unique.values()]
    .map((p, n) => ({ p, n }))
    .sort((a, b) => a.p.rule - b.p.rule || rank(a.p.key) - rank(b.p.key) || a.n - b.n)
    .map(({ p }) => {
      const name = (list[p.rule] as { name?: unknown } | null)?.name
      const at = typeof name === 'string' ? `rule ${name} (#${p.rule + 1})` : `rule #${p.rule + 1}`
      return p.key === '' ? `${at}: ${p.text}` : `${at}: ${p.key}: ${p.text}`
    })
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

function durationMs(raw: unknown): number | undefined {
  if (typeof raw === 'number') return raw
  const m = typeof raw === 'string' ? DURATION.exec(raw.trim()) : null
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : undefined
}

/**
 * What the schema cannot check of rule `i` (unique names, fields against the event types' Avro
 * schemas, min ≤ max, a regex that compiles), added to `found`; and the rule as the engine reads it.
 */
function checkRule(raw: unknown, i: number, found: Problem[]): Rule | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null
  const r = raw as Record<string, unknown>
  const bad = (key: string, text: string) => found.push({ rule: i, key, text })
  const kind = r.kind as Kind
  if (!(kind in KIND_KEYS)) return null
  const types: EventType[] = (
    r.type === '*' ? EVENT_TYPES : Array.isArray(r.type) ? r.type : [r.type]
  ).filter((t): t is EventType => (EVENT_TYPES as readonly unknown[]).includes(t))
  const checkField = (key: string, path: unknown, allowed: readonly FieldKind[] | null): string => {
    if (typeof path !== 'string' || path === '') return ''
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
      if (typeof r.min === 'number' && typeof r.max === 'number' && r.min > r.max)
        bad('max', `must be ≥ min (${r.min})`)
      rule.min = r.min
      rule.max = r.max
      break
    case 'allowed':
      rule.field = checkField('field', r.field, ['string', 'enum', 'number'])
      rule.values = r.values
      rule.set = r.set as IsoSet | undefined
      break
    case 'pattern':
      rule.field = checkField('field', r.field, ['string'])
      if (typeof r.regex === 'string') {
        try {
          new RegExp(r.regex, 'u')
        } catch (err) {
          bad('regex', (err as Error).message)
        }
      }
      rule.regex = r.regex
      break
    case 'freshness':
      rule.field = checkField('field', r.field ?? 'event_time', ['number'])
      rule.maxFutureMs = durationMs(r.max_future)
      rule.maxAgeMs = durationMs(r.max_age)
      break
    case 'cross_field': {
      const cond = (key: 'when' | 'require'): Condition | undefined => {
        const c = r[key] as Record<string, unknown> | undefined
        if (c === null || typeof c !== 'object' || Array.isArray(c)) return undefined
        return {
          field: checkField(`${key}.field`, c.field, null),
          op: c.op as Condition['op'],
          value: c.value,
        }
      }
      rule.when = cond('when')
      rule.require = cond('require')
      rule.field = (rule.require as Condition | undefined)?.field ?? ''
      break
    }
  }
  return rule as unknown as Rule
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
