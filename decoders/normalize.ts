import {
  type ArrayNode,
  type BooleanNode,
  type BytesNode,
  bodyField,
  type FieldModel,
  type NullNode,
  type NumberNode,
  type RecordNode,
  recordOf,
  type SchemaNode,
  type StringNode,
} from '../events/schema-model.js'
import { type FieldError, MAX_ERRORS_PER_EVENT } from './result.js'

/**
 * Compiles an event schema's model (events/schema-model.ts: the .avsc with adgate's bounds) into
 * a function that checks and coerces one input value into the canonical event object the Avro
 * encoder writes. JSON, CSV and Avro input all pass through a normalizer compiled from the same
 * model.
 *
 * Modes:
 *   json  values as JSON.parse gives them; builds a new object of fixed shape (fast to encode)
 *   text  top-level values are CSV cells (strings, undefined = empty cell); nested values are JSON text
 *   avro  values already decoded by avsc: only the bounds are checked, the value is returned as is
 *
 * Bad input never throws: the normalizer returns a Violation listing every problem of the event,
 * each with the path of the bad value and the reason.
 */
export type Mode = 'json' | 'text' | 'avro'

export class Violation {
  constructor(
    /** In schema order, at most MAX_ERRORS_PER_EVENT, then one marker saying how many more; never empty. */
    readonly errors: readonly FieldError[],
  ) {}

  /** The first problem's path; null when the event itself is the problem (e.g. not an object). */
  get field(): string | null {
    return this.errors[0]!.field
  }

  get reason(): string {
    return this.errors[0]!.reason
  }
}

export type Normalizer = (value: unknown) => unknown

/** Deepest nesting accepted inside a JSON-text (ext) field; beyond it JSON.stringify could blow the stack. */
export const MAX_JSON_FIELD_DEPTH = 32

/**
 * Every problem of an event, found by a second walk only once the first (which stops at the first
 * problem) failed: the converters compiled with `collect` go on past a failed field, item or
 * value. A failed container hands its problems up in `collected` (paths innermost first); a leaf
 * failure is failPath and failReason, as in the first walk. Only MAX_ERRORS_PER_EVENT are kept;
 * the rest are counted.
 */
interface Problem {
  readonly path: string[]
  readonly reason: string
}

let collected: Problem[] | null = null
let problemsFound = 0
let problemsKept = 0

// Failures unwind through the compiled closures as a sentinel; the path is collected innermost
// first only on the failure path, so valid events pay nothing for error reporting.
const FAIL: unique symbol = Symbol('invalid')
const failPath: string[] = []
let failReason = ''

function fail(reason: string): typeof FAIL {
  failPath.length = 0
  failReason = reason
  collected = null
  return FAIL
}

/** A child of a collecting container failed: its problems, under `segment`, join the container's. */
function childFailed(problems: Problem[] | null, segment: string): Problem[] {
  const list = problems ?? []
  if (collected !== null) {
    for (const p of collected) {
      p.path.push(segment)
      list.push(p)
    }
    collected = null
  } else {
    problemsFound++
    if (problemsKept < MAX_ERRORS_PER_EVENT) {
      problemsKept++
      list.push({ path: [...failPath, segment], reason: failReason })
    }
  }
  return list
}

function failWith(problems: Problem[]): typeof FAIL {
  collected = problems
  return FAIL
}

type Conv = (value: unknown) => unknown

/** `model` is an event schema's model (events/schema-model.ts), bounds included. */
export function compileNormalizer(model: RecordNode, mode: Mode): (value: unknown) => unknown | Violation {
  const conv = converter(model, mode, false)
  let collecting: Conv | undefined
  return (value) => {
    const out = conv(value)
    if (out !== FAIL) return out
    const first: Problem = { path: [...failPath], reason: failReason }
    collecting ??= converter(model, mode, true)
    return new Violation(everyProblem(collecting, value) ?? [fieldError(first)])
  }
}

function converter(model: RecordNode, mode: Mode, collect: boolean): Conv {
  const whole = compile(model, mode, new Map(), true, collect)
  const body = bodyField(model)
  return body && mode !== 'avro' ? envelopeConv(model, body, whole, mode, collect) : whole
}

/** The collecting walk of an event the first walk failed; null if it finds nothing (it always should). */
function everyProblem(collecting: Conv, value: unknown): FieldError[] | null {
  collected = null
  problemsFound = 0
  problemsKept = 0
  if (collecting(value) !== FAIL) return null
  let problems: Problem[]
  if (collected === null) {
    problems = [{ path: [...failPath], reason: failReason }]
    problemsFound++
  } else {
    problems = collected
    collected = null
  }
  const errors = problems.map(fieldError)
  const more = problemsFound - problems.length
  if (more > 0)
    errors.push({ field: null, reason: `…${more} more (the first ${problems.length} are listed)` })
  return errors
}

function fieldError(problem: Problem): FieldError {
  let field = ''
  for (let i = problem.path.length - 1; i >= 0; i--) {
    const seg = problem.path[i]!
    field += seg.charCodeAt(0) === 91 /* [ */ || field === '' ? seg : `.${seg}`
  }
  return { field: field === '' ? null : field, reason: problem.reason }
}

/**
 * A schema with an envelope (adgate.body): JSON and CSV senders post either the body alone, exactly
 * as they have it, or the envelope with the body in its field. The body alone gets the envelope's
 * defaults, its derived fields left for `stamp`.
 */
function envelopeConv(model: RecordNode, body: FieldModel, whole: Conv, mode: Mode, collect: boolean): Conv {
  const record = recordOf(body.node)
  if (record === null) throw new Error(`schema: the body field ${body.name} must be a record`)
  const bare = compile(record, mode, new Map(), true, collect)
  const defaults = model.fields.map((f) => (f.hasDefault ? defaultFactory(f.default) : undefined))
  // Same key order as the whole record's output: one object shape for both forms.
  const build = new Function(
    'defaults',
    `return function envelope(body) { return { ${model.fields
      .map(
        (f, i) =>
          `${JSON.stringify(f.name)}: ${f === body ? 'body' : f.role === 'derived' ? 'undefined' : `defaults[${i}]()`}`,
      )
      .join(', ')} } }`,
  )(defaults) as (body: unknown) => unknown
  const name = body.name
  return (v) => {
    if (v !== null && typeof v === 'object' && (v as Record<string, unknown>)[name] !== undefined)
      return whole(v)
    const out = bare(v)
    return out === FAIL ? FAIL : build(out)
  }
}

// One converter per record node and level: a named record used twice is compiled once (and a
// reference inside its own fields resolves through the thunk).
type Records = Map<RecordNode, () => Conv>

function compile(node: SchemaNode, mode: Mode, records: Records, topLevel: boolean, collect: boolean): Conv {
  switch (node.kind) {
    case 'record': {
      const known = topLevel ? undefined : records.get(node)
      if (known) return (v) => known()(v)
      let compiled: Conv | undefined
      if (!topLevel) records.set(node, () => compiled!)
      compiled = recordConv(node, mode, records, topLevel, collect)
      return compiled
    }
    case 'optional': {
      const inner = compile(node.inner, mode, records, topLevel, collect)
      return (v) => (v === null || v === undefined ? null : inner(v))
    }
    case 'enum':
      return enumConv(node.symbols)
    case 'array':
      return arrayConv(compile(node.items, nestedMode(mode), records, false, collect), node, mode, collect)
    case 'map':
      return mapConv(compile(node.values, nestedMode(mode), records, false, collect), mode, collect)
    default: {
      const primitive = primitiveConv(node, mode)
      if (node.kind === 'long' && node.timestamp && mode !== 'avro') return timestampConv(primitive, mode)
      return primitive
    }
  }
}

// In text mode a nested value (record, array, map) arrives as JSON text in one CSV cell, so
// what is inside it is JSON-typed.
function nestedMode(mode: Mode): Mode {
  return mode === 'text' ? 'json' : mode
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}

function primitiveConv(node: NullNode | BooleanNode | NumberNode | StringNode | BytesNode, mode: Mode): Conv {
  const text = mode === 'text'
  switch (node.kind) {
    case 'null':
      return (v) => (v === null || v === undefined ? null : fail(`must be null, got ${describe(v)}`))
    case 'boolean':
      return (v) => {
        if (typeof v === 'boolean') return v
        if (text) {
          if (v === 'true' || v === '1') return true
          if (v === 'false' || v === '0') return false
        }
        return fail(`must be a boolean, got ${describe(v)}`)
      }
    case 'int':
      return numberConv(
        node,
        text,
        (n) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647,
        'a 32-bit integer',
      )
    case 'long':
      return numberConv(node, text, isAvroLong, `an integer (within ±${MAX_LONG})`)
    case 'float':
    case 'double':
      return numberConv(node, text, Number.isFinite, 'a finite number')
    case 'string':
      return node.json ? jsonTextConv(node) : stringConv(node)
    case 'bytes':
      return (v) => (Buffer.isBuffer(v) ? v : fail(`must be bytes, got ${describe(v)}`))
  }
}

/**
 * The largest whole number a long field takes: avsc encodes longs exactly only within ±(2^53 − 2)
 * (one less than Number.MAX_SAFE_INTEGER), and refuses the rest when the event is encoded.
 * Bounding here makes ±(2^53 − 1) a per-event rejection instead of a failed batch; the native
 * transcoder (native/src/addon.cc, MAX_LONG) defers the same values to this check.
 */
export const MAX_LONG = 9007199254740990

function isAvroLong(n: number): boolean {
  return Number.isInteger(n) && n >= -MAX_LONG && n <= MAX_LONG
}

function numberConv(b: NumberNode, text: boolean, ok: (n: number) => boolean, what: string): Conv {
  const min = b.min
  const max = b.max
  return (v) => {
    let n = v
    if (typeof n !== 'number') {
      if (!text || typeof n !== 'string' || !NUMBER_TEXT.test(n))
        return fail(`must be ${what}, got ${describe(v)}`)
      n = Number(n)
    }
    const num = n as number
    if (!ok(num)) return fail(`must be ${what}, got ${describe(v)}`)
    if (min !== undefined && num < min) return fail(`must be ≥ ${min}, got ${num}`)
    if (max !== undefined && num > max) return fail(`must be ≤ ${max}, got ${num}`)
    return num
  }
}

const NUMBER_TEXT = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

function stringConv(b: StringNode): Conv {
  const min = b.minLength ?? 0
  const max = b.maxLength ?? Number.POSITIVE_INFINITY
  return (v) => {
    if (typeof v !== 'string') return fail(`must be a string, got ${describe(v)}`)
    // A lone surrogate (JSON "\ud800") has no UTF-8 form: avsc would write invalid bytes.
    if (!v.isWellFormed()) return fail('must be valid Unicode text (it holds a lone surrogate)')
    if (v.length < min)
      return fail(min === 1 ? 'must not be empty' : `must be at least ${min} characters, got ${v.length}`)
    if (v.length > max) return fail(`must be at most ${max} characters, got ${v.length}`)
    return v
  }
}

/** The longest JSON text a JSON-text field without adgate.maxLength keeps. */
export const DEFAULT_JSON_TEXT_LENGTH = 16384

// JSON text fields (OpenRTB ext) accept an object/array in JSON input and keep it as text.
function jsonTextConv(b: StringNode): Conv {
  const max = b.maxLength ?? DEFAULT_JSON_TEXT_LENGTH
  return (v) => {
    let s: string
    if (typeof v === 'string') {
      if (!isJsonText(v)) return fail('must be JSON text')
      s = v
    } else if (v !== null && typeof v === 'object') {
      if (depthExceeds(v, MAX_JSON_FIELD_DEPTH))
        return fail(`is nested deeper than ${MAX_JSON_FIELD_DEPTH} levels`)
      s = JSON.stringify(v)
    } else {
      return fail(`must be an object or JSON text, got ${describe(v)}`)
    }
    if (s.length > max) return fail(`must be at most ${max} characters of JSON, got ${s.length}`)
    return s
  }
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

function depthExceeds(value: unknown, limit: number): boolean {
  if (limit < 0) return true
  if (value === null || typeof value !== 'object') return false
  const children = Array.isArray(value) ? value : Object.values(value)
  for (const child of children) if (depthExceeds(child, limit - 1)) return true
  return false
}

// ISO-8601 with a time zone, as ad servers write it; epoch milliseconds are the other accepted form.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/

function timestampConv(inner: Conv, mode: Mode): Conv {
  return (v) => {
    if (typeof v === 'string' && (mode === 'json' || !/^-?\d+$/.test(v))) {
      if (!ISO_TIME.test(v))
        return fail(`must be epoch milliseconds or an ISO-8601 time with zone, got ${describe(v)}`)
      const ms = Date.parse(v)
      if (Number.isNaN(ms) || !dayExists(v)) return fail(`is not a valid time: ${describe(v)}`)
      return inner(ms)
    }
    return inner(v)
  }
}

// V8's Date.parse rolls a day past the month's end over (2026-02-30 → March 2) instead of refusing it.
function dayExists(iso: string): boolean {
  const day = Number(iso.slice(8, 10))
  return (
    day <= 28 || day <= new Date(Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)), 0)).getUTCDate()
  )
}

function enumConv(symbols: readonly string[]): Conv {
  const allowed = new Set(symbols)
  const list = symbols.join(', ')
  return (v) =>
    typeof v === 'string' && allowed.has(v) ? v : fail(`must be one of ${list}, got ${describe(v)}`)
}

function parseJsonCell(v: unknown): unknown {
  if (typeof v !== 'string') return v
  try {
    return JSON.parse(v)
  } catch {
    return FAIL
  }
}

function arrayConv(item: Conv, b: ArrayNode, mode: Mode, collect: boolean): Conv {
  const min = b.minItems ?? 0
  const max = b.maxItems ?? Number.POSITIVE_INFINITY
  const avro = mode === 'avro'
  return (input) => {
    const v = mode === 'text' ? parseJsonCell(input) : input
    if (v === FAIL) return fail('must be a JSON array')
    if (!Array.isArray(v)) return fail(`must be an array, got ${describe(v)}`)
    if (v.length < min) return fail(`must have at least ${min} item${min === 1 ? '' : 's'}, got ${v.length}`)
    if (v.length > max) return fail(`must have at most ${max} items, got ${v.length}`)
    const out = avro ? v : new Array(v.length)
    let problems: Problem[] | null = null
    for (let i = 0; i < v.length; i++) {
      const x = item(v[i])
      if (x === FAIL) {
        if (!collect) {
          failPath.push(`[${i}]`)
          return FAIL
        }
        problems = childFailed(problems, `[${i}]`)
      }
      out[i] = x
    }
    return problems === null ? out : failWith(problems)
  }
}

function mapConv(value: Conv, mode: Mode, collect: boolean): Conv {
  return (input) => {
    const v = mode === 'text' ? parseJsonCell(input) : input
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      return fail(`must be an object, got ${describe(v)}`)
    const out: Record<string, unknown> = {}
    let problems: Problem[] | null = null
    for (const [k, x] of Object.entries(v)) {
      const y = value(x)
      if (y === FAIL) {
        if (!collect) {
          failPath.push(k)
          return FAIL
        }
        problems = childFailed(problems, k)
      }
      out[k] = y
    }
    return problems === null ? out : failWith(problems)
  }
}

function recordConv(
  schema: RecordNode,
  mode: Mode,
  records: Records,
  topLevel: boolean,
  collect: boolean,
): Conv {
  // Nested records in text mode are JSON text; their fields are then JSON-typed.
  const fieldMode: Mode = topLevel ? mode : nestedMode(mode)
  const convs = schema.fields.map((f) => compile(f.node, fieldMode, records, false, collect))
  const defaults = schema.fields.map((f) => (f.hasDefault ? defaultFactory(f.default) : undefined))
  const names = schema.fields.map((f) => f.name)

  // Generated per record so every output object has one fixed shape (monomorphic for the
  // Avro encoder) and field reads are property accesses V8 can cache.
  const lines: string[] = []
  lines.push(
    mode === 'text' && !topLevel
      ? 'if (typeof v === "string") { v = parseJsonCell(v); if (v === FAIL) return fail("must be a JSON object") }'
      : '',
  )
  lines.push(
    'if (v === null || typeof v !== "object" || Array.isArray(v)) return fail("must be an object, got " + describe(v))',
  )
  // Collecting: a failed field adds its problems and the walk goes on to the next field.
  if (collect) lines.push('let problems = null')
  const fill = mode !== 'avro' // json and text build a new object; adgate fills its own fields
  schema.fields.forEach((field, i) => {
    const key = JSON.stringify(field.name)
    const x = `x${i}`
    if (fill && (field.role === 'rest' || field.role === 'micros')) {
      lines.push(`let ${x} = null`) // computed below from the other fields, never read from input
      return
    }
    lines.push(`let ${x} = v[${key}]`)
    const missing =
      field.role === 'derived'
        ? '' // stays undefined: result.ts `stamp` derives it
        : defaults[i] === undefined
          ? collect
            ? `fail("is required"); problems = childFailed(problems, ${key})`
            : `return missing(${key})`
          : field.default === null || typeof field.default !== 'object'
            ? `${x} = ${JSON.stringify(field.default)}`
            : `${x} = defaults[${i}]()`
    // A value the inline test accepts is one the field's converter returns unchanged; anything
    // else (text to convert, a failure to describe) goes through the converter.
    const quick = quickAccept(field.node, x)
    const convert = collect
      ? `${x} = convs[${i}](${x}); if (${x} === FAIL) problems = childFailed(problems, ${key})`
      : `${x} = convs[${i}](${x}); if (${x} === FAIL) { failPath.push(${key}); return FAIL }`
    lines.push(
      `if (${x} === undefined) { ${missing} } else ${quick ? `if (!(${quick})) { ${convert} }` : `{ ${convert} }`}`,
    )
  })
  // The derived fields read the others: computed only once they all passed.
  if (collect) lines.push('if (problems !== null) return failWith(problems)')
  lines.push(...derivedLines(schema, fill))
  if (mode === 'avro') lines.push('return v')
  else lines.push(`return { ${names.map((n, i) => `${JSON.stringify(n)}: x${i}`).join(', ')} }`)

  const factory = new Function(
    'convs',
    'defaults',
    'FAIL',
    'fail',
    'failPath',
    'describe',
    'parseJsonCell',
    'missing',
    'restConv',
    'childFailed',
    'failWith',
    `return function normalize_${schema.name.slice(schema.name.lastIndexOf('.') + 1)}(v) {\n${lines.join('\n')}\n}`,
  )
  return factory(
    convs,
    defaults,
    FAIL,
    fail,
    failPath,
    describe,
    parseJsonCell,
    missing,
    restConv,
    childFailed,
    failWith,
  ) as Conv
}

/**
 * The fields adgate fills in: micros from their decimal sibling (in avro mode the writer's value
 * is checked against it), and the rest field from the keys no field models, plus explicit
 * nulls of optional fields (null and absent are one value in Avro), so the input can be rebuilt.
 */
function derivedLines(schema: RecordNode, fill: boolean): string[] {
  const lines: string[] = []
  const index = new Map(schema.fields.map((f, i) => [f.name, i]))
  schema.fields.forEach((f, i) => {
    if (f.role !== 'micros') return
    const of = `x${index.get(f.microsOf!)}`
    const value = `${of} === null ? null : Math.round(${of} * 1e6)`
    const key = JSON.stringify(f.name)
    // Avro input carries the writer's micros (and its bytes may be reused as they are): checked.
    lines.push(
      fill
        ? `x${i} = ${value}`
        : `if (v[${key}] !== (${value})) { fail("must be ${f.microsOf} in micros, " + (${value})); failPath.push(${key}); return FAIL }`,
    )
  })
  const rest = schema.fields.findIndex((f) => f.role === 'rest')
  if (!fill || rest < 0) return lines
  const cases = schema.fields
    .filter((f) => f.role === 'input' || f.role === 'derived' || f.role === 'body')
    .map((f) => {
      const key = JSON.stringify(f.name)
      return f.node.kind === 'optional'
        ? `case ${key}: if (v[k] === null) (rest ??= Object.create(null))[k] = null; break`
        : `case ${key}: break`
    })
  // A null-prototype object: a "__proto__" key stays a key.
  lines.push(
    'let rest = null',
    `for (const k in v) switch (k) { ${cases.join('; ')}; default: (rest ??= Object.create(null))[k] = v[k] }`,
    `if (rest !== null) { x${rest} = restConv(rest); if (x${rest} === FAIL) { failPath.push(${JSON.stringify(schema.fields[rest]!.name)}); return FAIL } }`,
  )
  return lines
}

const restConv = jsonTextConv({ kind: 'string', json: true, maxLength: 262144 })

/**
 * A rest field's JSON text for `rest` (the keys no field models), built as for JSON input; or the
 * problem, at `field` (its path), when it cannot be kept (nested too deep, too long).
 */
export function restText(rest: object, field: string): string | Violation {
  const text = restConv(rest)
  return text === FAIL ? new Violation([{ field, reason: failReason }]) : (text as string)
}

/**
 * JS source of a test on `x` that holds only for values the compiled converter of `node` would
 * return as they are (strings and numbers within bounds, null in an optional field), so the
 * generated record function can skip the converter call for them. Undefined when there is no
 * such cheap test (records, arrays, enums, JSON-text fields; for optional ones, null only).
 * Valid in every mode: text-mode converters also return strings and numbers unchanged.
 */
function quickAccept(node: SchemaNode, x: string): string | undefined {
  const range = (b: NumberNode, lo: number, hi: number) =>
    `${x} >= ${Math.max(lo, b.min ?? lo)} && ${x} <= ${Math.min(hi, b.max ?? hi)}`
  switch (node.kind) {
    case 'optional': {
      // null is accepted as is whatever the other branch (saves a call per absent nested record).
      const inner = quickAccept(node.inner, x)
      return inner ? `${x} === null || (${inner})` : `${x} === null`
    }
    case 'boolean':
      return `typeof ${x} === "boolean"`
    case 'int':
      return `typeof ${x} === "number" && (${x} | 0) === ${x} && ${range(node, -2147483648, 2147483647)}`
    case 'long':
      return `typeof ${x} === "number" && Math.floor(${x}) === ${x} && ${range(node, -MAX_LONG, MAX_LONG)}`
    case 'float':
    case 'double':
      return `typeof ${x} === "number" && Number.isFinite(${x})${node.min === undefined ? '' : ` && ${x} >= ${node.min}`}${node.max === undefined ? '' : ` && ${x} <= ${node.max}`}`
    case 'string': {
      if (node.json) return undefined
      const min = node.minLength ?? 0
      return `typeof ${x} === "string" && ${x}.isWellFormed()${min > 0 ? ` && ${x}.length >= ${min}` : ''}${node.maxLength === undefined ? '' : ` && ${x}.length <= ${node.maxLength}`}`
    }
    default:
      return undefined
  }
}

function missing(field: string): typeof FAIL {
  fail('is required')
  failPath.push(field)
  return FAIL
}

function defaultFactory(value: unknown): () => unknown {
  if (value === null || typeof value !== 'object') return () => value
  const json = JSON.stringify(value)
  return () => JSON.parse(json)
}
