// openapi.yaml for tests: load it, walk its operations, validate with its component schemas,
// compare its event schemas with the .avsc files, and talk raw HTTP/1.1 to the gateway.
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import { parse } from 'yaml'

export const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url))

// biome-ignore lint/suspicious/noExplicitAny: a parsed YAML document is walked dynamically
export type Node = any

export function loadSpec(): Node {
  return parse(readFileSync(SPEC_PATH, 'utf8'), { maxAliasCount: -1 })
}

/** The node a local `#/a/b` reference points at; throws when it does not resolve. */
export function resolvePointer(doc: Node, ref: string): Node {
  if (!ref.startsWith('#/')) throw new Error(`only local references are used: ${ref}`)
  let node = doc
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (node === null || typeof node !== 'object' || !(key in node))
      throw new Error(`${ref} does not resolve`)
    node = node[key]
  }
  return node
}

/** Every `$ref` in the document with where it sits. */
export function refsIn(node: Node, at = '#'): { at: string; ref: string }[] {
  if (node === null || typeof node !== 'object') return []
  const out: { at: string; ref: string }[] = []
  if (typeof node.$ref === 'string') out.push({ at, ref: node.$ref })
  for (const [k, v] of Object.entries(node)) out.push(...refsIn(v, `${at}/${k}`))
  return out
}

/** A response, header or parameter object with its `$ref` followed (siblings of the ref are kept). */
export function deref(doc: Node, node: Node): Node {
  let out = node
  for (let i = 0; out && typeof out.$ref === 'string' && i < 10; i++) {
    const { $ref, ...rest } = out
    out = { ...resolvePointer(doc, $ref), ...rest }
  }
  return out
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

export interface DeclaredResponse {
  /** `METHOD path status`, e.g. `POST /v1/bids 413`; unmatched routes are `ANY * 404`. */
  readonly key: string
  readonly method: string
  readonly path: string
  readonly status: number
  /** The response object, $ref followed. */
  readonly response: Node
}

/** Every (method, path, status) the document declares, plus the unmatched-route answer. */
export function declaredResponses(doc: Node): DeclaredResponse[] {
  const out: DeclaredResponse[] = []
  const add = (method: string, path: string, responses: Node) => {
    for (const [status, response] of Object.entries(responses ?? {})) {
      out.push({
        key: `${method} ${path} ${status}`,
        method,
        path,
        status: Number(status),
        response: deref(doc, response),
      })
    }
  }
  for (const [path, item] of Object.entries<Node>(doc.paths)) {
    for (const method of METHODS) if (item[method]) add(method.toUpperCase(), path, item[method].responses)
  }
  if (doc['x-unmatched-routes']) add('ANY', '*', doc['x-unmatched-routes'].responses)
  return out
}

const BASE = 'https://adgate.invalid/openapi.json'

/** Rewrites `#/components/schemas/X` into the validator's `$defs`. */
function rewrite(node: Node): Node {
  if (Array.isArray(node)) return node.map(rewrite)
  if (node === null || typeof node !== 'object') return node
  const out: Node = {}
  for (const [k, v] of Object.entries(node)) {
    out[k] =
      k === '$ref' && typeof v === 'string'
        ? v.replace('#/components/schemas/', `${BASE}#/$defs/`)
        : rewrite(v)
  }
  return out
}

/** JSON Schema 2020-12 validators for the document's component schemas and inline schemas. */
export class SchemaValidator {
  private readonly ajv = new Ajv2020({
    strict: true,
    strictRequired: false,
    allErrors: true,
    allowUnionTypes: true,
  })
  private readonly cache = new Map<Node, ValidateFunction>()

  constructor(doc: Node) {
    this.ajv.addSchema({ $id: BASE, $defs: rewrite(doc.components.schemas) })
  }

  /** Compile every component schema (strict mode reports unknown keywords and bad schemas). */
  compileAll(doc: Node): void {
    for (const name of Object.keys(doc.components.schemas)) this.component(name)
  }

  component(name: string): ValidateFunction {
    const v = this.ajv.getSchema(`${BASE}#/$defs/${name}`)
    if (!v) throw new Error(`no component schema ${name}`)
    return v
  }

  /** A validator for a schema found anywhere in the document (cached per schema object). */
  schema(schema: Node): ValidateFunction {
    let v = this.cache.get(schema)
    if (!v) {
      v = this.ajv.compile(rewrite(schema))
      this.cache.set(schema, v)
    }
    return v
  }

  /** null when valid, else the errors as text. */
  check(schema: Node | ValidateFunction, value: unknown): string | null {
    const v = typeof schema === 'function' ? schema : this.schema(schema)
    return v(value) ? null : this.ajv.errorsText(v.errors, { separator: '\n' })
  }
}

// ------------------------------------------------------------------------------------------
// The event schemas against the .avsc files they are derived from. This walks the .avsc JSON
// itself, not events/schema-model.ts (what the code under test reads), on purpose: an independent
// oracle, so a fault in the model cannot hide in the comparison.

interface AvroField {
  name: string
  type: unknown
  default?: unknown
  [attr: string]: unknown
}

const PRIMITIVES: Readonly<Record<string, string>> = {
  string: 'string',
  int: 'integer',
  long: 'integer',
  float: 'number',
  double: 'number',
  boolean: 'boolean',
}

const BOUNDS: readonly (readonly [string, string])[] = [
  ['adgate.minLength', 'minLength'],
  ['adgate.maxLength', 'maxLength'],
  ['adgate.min', 'minimum'],
  ['adgate.max', 'maximum'],
  ['adgate.minItems', 'minItems'],
  ['adgate.maxItems', 'maxItems'],
]

/**
 * Differences between an Avro record schema (with adgate's bound attributes) and the JSON Schema
 * documenting its JSON form: field names, required fields (those without a default), nullability,
 * types, enums and every bound. An empty list means the two agree.
 */
export function compareWithAvro(doc: Node, avsc: unknown, schema: Node): string[] {
  const problems: string[] = []
  const named = new Map<string, unknown>()

  const resolve = (node: Node): Node => {
    let out = node
    while (out && typeof out.$ref === 'string') {
      const { $ref, ...rest } = out
      out = { ...resolvePointer(doc, $ref), ...rest }
    }
    return out
  }
  /** The non-null part of a JSON Schema, and whether null is allowed. */
  const nonNull = (node: Node): { schema: Node; nullable: boolean } => {
    const s = resolve(node)
    if (Array.isArray(s.oneOf)) {
      const rest = s.oneOf.filter((b: Node) => resolve(b).type !== 'null')
      if (rest.length === 1 && rest.length < s.oneOf.length)
        return { schema: resolve(rest[0]), nullable: true }
    }
    if (Array.isArray(s.type) && s.type.includes('null')) {
      const types = s.type.filter((t: string) => t !== 'null')
      return { schema: { ...s, type: types.length === 1 ? types[0] : types }, nullable: true }
    }
    return { schema: s, nullable: false }
  }

  const compare = (avro: unknown, bounds: Record<string, unknown>, node: Node, at: string): void => {
    if (Array.isArray(avro)) {
      const inner = avro.filter((b) => b !== 'null')
      const { schema, nullable } = nonNull(node)
      if (!nullable) problems.push(`${at}: Avro allows null, the document does not`)
      compare(inner[0], bounds, schema, at)
      return
    }
    const { schema: s, nullable } = nonNull(node)
    if (nullable) problems.push(`${at}: the document allows null, Avro does not`)
    if (typeof avro === 'string' && named.has(avro)) {
      compare(named.get(avro), bounds, s, at)
      return
    }
    const a = (typeof avro === 'string' ? { type: avro } : avro) as Record<string, unknown>
    const all = { ...bounds, ...a }
    if (typeof a.type === 'object') {
      compare(a.type, all, s, at)
      return
    }
    if (all['adgate.json'] === true) {
      if (JSON.stringify(s.type) !== JSON.stringify(['object', 'array', 'string']))
        problems.push(`${at}: a JSON-text field must take an object, an array or JSON text`)
      return
    }
    if (a.logicalType === 'timestamp-millis') {
      const int = (s.oneOf ?? []).map(resolve).find((b: Node) => b.type === 'integer')
      const str = (s.oneOf ?? []).map(resolve).find((b: Node) => b.type === 'string')
      if (!int || !str) problems.push(`${at}: a time must be epoch ms or an ISO-8601 string`)
      else if ((all['adgate.min'] ?? int.minimum) !== int.minimum)
        problems.push(`${at}: minimum ${int.minimum}, Avro says ${all['adgate.min']}`)
      return
    }
    for (const [attr, keyword] of BOUNDS) {
      if (all[attr] !== undefined && s[keyword] !== all[attr])
        problems.push(`${at}: ${keyword} is ${s[keyword]}, Avro says ${all[attr]}`)
      if (all[attr] === undefined && s[keyword] !== undefined && !['minimum', 'maximum'].includes(keyword))
        problems.push(`${at}: ${keyword} ${s[keyword]} is not in the Avro schema`)
    }
    const expectType = (t: string) => {
      if (s.type !== t) problems.push(`${at}: type ${JSON.stringify(s.type)}, Avro is ${a.type}`)
    }
    const primitive = PRIMITIVES[String(a.type)]
    if (primitive) {
      expectType(primitive)
      if (
        a.type === 'int' &&
        ((s.minimum ?? -Infinity) < -(2 ** 31) || (s.maximum ?? Infinity) > 2 ** 31 - 1)
      )
        problems.push(`${at}: an Avro int is 32 bits`)
    } else if (a.type === 'enum') {
      named.set(String(a.name), a)
      if (JSON.stringify(s.enum) !== JSON.stringify(a.symbols))
        problems.push(`${at}: enum ${JSON.stringify(s.enum)}, Avro has ${JSON.stringify(a.symbols)}`)
    } else if (a.type === 'array') {
      expectType('array')
      compare(a.items, {}, s.items, `${at}[]`)
    } else if (a.type === 'record') {
      named.set(String(a.name), a)
      expectType('object')
      const fields = a.fields as AvroField[]
      const props = s.properties ?? {}
      const names = fields.map((f) => f.name)
      for (const p of Object.keys(props))
        if (!names.includes(p)) problems.push(`${at}.${p}: not a field of Avro ${String(a.name)}`)
      const required = fields.filter((f) => !('default' in f)).map((f) => f.name)
      if (JSON.stringify([...(s.required ?? [])].sort()) !== JSON.stringify([...required].sort()))
        problems.push(
          `${at}: required ${JSON.stringify(s.required)}, Avro has no default for ${JSON.stringify(required)}`,
        )
      for (const f of fields) {
        if (!(f.name in props)) problems.push(`${at}.${f.name}: missing from the document`)
        else compare(f.type, pickBounds(f), props[f.name], `${at}.${f.name}`)
      }
    } else {
      problems.push(`${at}: Avro type ${String(a.type)} is not handled`)
    }
  }
  compare(avsc, {}, schema, '$')
  return problems
}

function pickBounds(f: AvroField): Record<string, unknown> {
  return Object.fromEntries(Object.entries(f).filter(([k]) => k.startsWith('adgate.')))
}

// ------------------------------------------------------------------------------------------
// Raw HTTP/1.1, for what fetch cannot do: hold a connection open across a shutdown, send a
// Content-Length without a body, stall mid-body.

export interface RawResponse {
  readonly status: number
  /** Lower-case names. */
  readonly headers: Record<string, string>
  readonly body: string
}

function takeResponse(buf: Buffer, closed: boolean): { response: RawResponse; consumed: number } | null {
  const end = buf.indexOf('\r\n\r\n')
  if (end === -1) return null
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1])
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const start = end + 4
  let length: number
  if (status === 101 || status === 204 || status === 304) length = 0
  else if (headers['content-length'] !== undefined) length = Number(headers['content-length'])
  else if (closed) length = buf.length - start
  else return null
  if (buf.length < start + length) return null
  return {
    response: { status, headers, body: buf.subarray(start, start + length).toString('utf8') },
    consumed: start + length,
  }
}

/** One client connection; responses are read in order. */
export class RawConnection {
  private buf = Buffer.alloc(0)
  private closed = false
  private wake: (() => void) | null = null

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      this.wake?.()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake?.()
    })
    // EPIPE / ECONNRESET after the server answered and closed: the answer is in buf.
    socket.on('error', () => {})
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => resolve(new RawConnection(socket)))
      socket.once('error', reject)
    })
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(data)
  }

  /** The next response on this connection; throws if none arrives within `timeoutMs`. */
  async response(timeoutMs = 5000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const taken = takeResponse(this.buf, this.closed)
      if (taken) {
        this.buf = this.buf.subarray(taken.consumed)
        return taken.response
      }
      const left = deadline - Date.now()
      if (this.closed || left <= 0)
        throw new Error(`no complete HTTP response; got ${JSON.stringify(this.buf.toString('latin1'))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wake = null
    }
  }

  exchange(request: string, timeoutMs?: number): Promise<RawResponse> {
    this.write(request)
    return this.response(timeoutMs)
  }

  close(): void {
    this.socket.destroy()
  }
}

/** One request on a fresh connection, then close it. */
export async function rawRequest(port: number, request: string, timeoutMs?: number): Promise<RawResponse> {
  const conn = await RawConnection.open(port)
  try {
    return await conn.exchange(request, timeoutMs)
  } finally {
    conn.close()
  }
}
