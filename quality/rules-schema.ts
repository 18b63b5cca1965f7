import { EVENT_TYPES } from '../events/catalog.js'
import type { Kind, Op } from './rules.js'

/**
 * The JSON Schema of a rules document (quality/default-rules.yaml), checked by ajv in
 * rules-validation.ts. Two annotations, ignored by the schema itself, make its errors read as
 * the file's author needs them: `errorText`, what is allowed where the schema fails ({value} is
 * the value found), and `errorAt`, the key a failure of a whole rule is reported under.
 * What a schema cannot say — whether a field exists in the event type's Avro schema, unique
 * names, min ≤ max, a regex that compiles — is checked in rules-validation.ts.
 */
export const KINDS: readonly Kind[] = ['not_null', 'range', 'allowed', 'pattern', 'freshness', 'cross_field']
export const OPS: readonly Op[] = ['not_null', 'null', 'eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in']
export const ISO_SET_NAMES = ['iso3166_alpha2', 'iso3166_alpha3', 'iso4217'] as const

const COMMON_KEYS = ['name', 'type', 'kind', 'severity', 'message'] as const
export const KIND_KEYS: Readonly<Record<Kind, readonly string[]>> = {
  not_null: ['field'],
  range: ['field', 'min', 'max'],
  allowed: ['field', 'values', 'set'],
  pattern: ['field', 'regex'],
  freshness: ['field', 'max_future', 'max_age'],
  cross_field: ['when', 'require'],
}

/** A rule's name (rule names are joined with commas in quality flags). */
export const NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** A duration: whole milliseconds, or a number with ms, s, m, h or d. */
export const DURATION = /^(\d+)\s*(ms|s|m|h|d)$/

const field = { type: 'string', minLength: 1, errorText: 'must name a field' }
const number = { type: 'number', errorText: 'must be a number' }
const duration = {
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: `^\\s*${DURATION.source.slice(1, -1)}\\s*$` },
  ],
  errorText: 'must be a duration such as 500ms, 30s, 10m, 2h or 30d',
}
const typeName = {
  enum: [...EVENT_TYPES],
  errorText: '{value} is not bid, impression, click, conversion or *',
}

/** What each op says about `value`. */
function valueFor(op: Op): object {
  const value = (schema: object) => ({ required: ['value'], properties: { value: schema } })
  switch (op) {
    case 'null':
    case 'not_null':
      return { not: { required: ['value'] }, errorAt: 'value', errorText: `${op} takes no value` }
    case 'in':
      return value({ type: 'array', minItems: 1, errorText: 'in needs a non-empty list' })
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      return value({ type: 'number', errorText: `${op} needs a number` })
    case 'eq':
    case 'ne':
      return value({ errorText: `${op} needs a value` })
  }
}

const condition = {
  type: 'object',
  errorText: 'must be a mapping {field, op, value}',
  properties: { field, op: { enum: OPS, errorText: `must be one of ${OPS.join(', ')}` }, value: true },
  required: ['field', 'op'],
  additionalProperties: false,
  additionalText: 'not a key of a condition',
  allOf: OPS.map((op) => ({
    if: { properties: { op: { const: op } }, required: ['op'] },
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then
    then: valueFor(op),
  })),
}

/** What a rule of each kind holds beside the common keys. */
const KIND_SCHEMA: Readonly<Record<Kind, object>> = {
  not_null: { properties: { field }, required: ['field'] },
  range: {
    properties: { field, min: number, max: number },
    required: ['field'],
    anyOf: [{ required: ['min'] }, { required: ['max'] }],
    errorAt: 'min',
    errorText: 'a range needs min, max or both',
  },
  allowed: {
    properties: {
      field,
      values: {
        type: 'array',
        minItems: 1,
        items: { type: ['string', 'number'] },
        errorText: 'must be a non-empty list of strings or numbers',
      },
      set: { enum: ISO_SET_NAMES, errorText: `must be one of ${ISO_SET_NAMES.join(', ')}` },
    },
    required: ['field'],
    oneOf: [{ required: ['values'] }, { required: ['set'] }],
    errorAt: 'values',
    errorText: 'give either values or set',
  },
  pattern: {
    properties: { field, regex: { type: 'string', errorText: 'must be a regular expression (a string)' } },
    required: ['field', 'regex'],
  },
  freshness: {
    properties: { field, max_future: duration, max_age: duration },
    anyOf: [{ required: ['max_future'] }, { required: ['max_age'] }],
    errorAt: 'max_future',
    errorText: 'freshness needs max_future, max_age or both',
  },
  cross_field: { properties: { when: condition, require: condition }, required: ['when', 'require'] },
}

const rule = {
  type: 'object',
  errorText: 'must be a mapping',
  properties: {
    name: { type: 'string', pattern: NAME.source, errorText: 'must be 1-64 of [A-Za-z0-9_.-]' },
    kind: { enum: KINDS, errorText: `must be one of ${KINDS.join(', ')}` },
    severity: { enum: ['reject', 'flag'], errorText: 'must be reject or flag' },
    message: { type: 'string', errorText: 'must be a string' },
    type: {
      if: { type: 'array' },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then
      then: { type: 'array', minItems: 1, items: typeName, errorText: 'names no event type' },
      else: { enum: [...EVENT_TYPES, '*'], errorText: typeName.errorText },
    },
  },
  required: ['name', 'kind', 'severity', 'type'],
  allOf: KINDS.map((kind) => {
    const keys = [...COMMON_KEYS, ...KIND_KEYS[kind]]
    const own = KIND_SCHEMA[kind] as { properties: Record<string, unknown> }
    return {
      if: { properties: { kind: { const: kind } }, required: ['kind'] },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then
      then: {
        ...own,
        properties: { ...Object.fromEntries(keys.map((k) => [k, true])), ...own.properties },
        additionalProperties: false,
        additionalText: `not a key of a ${kind} rule`,
      },
    }
  }),
}

export const RULES_DOCUMENT_SCHEMA = {
  type: 'object',
  properties: { rules: { type: 'array', items: rule } },
  required: ['rules'],
  additionalProperties: false,
}
