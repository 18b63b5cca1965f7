import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import avro from 'avsc'

/**
 * The backward-compatibility rule for adgate's schemas: every version of a subject can read data
 * written with every earlier version (consumers upgrade first, as Confluent's BACKWARD_TRANSITIVE).
 * Used on the real registry and on the fixtures that prove it catches a breaking change.
 */
export interface VersionedSchema {
  readonly version: number
  readonly file: string
  readonly json: unknown
}

export interface Registry {
  subjects: Record<string, { version: number; id: number; file: string }[]>
}

export function readRegistry(dir: string): Registry {
  return JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')) as Registry
}

export function readSchema(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'))
}

export function avscFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.avsc'))
}

/** Problems, one line each; none means every later version reads every earlier one. */
export function compatibilityProblems(versions: readonly VersionedSchema[], samples = 25): string[] {
  const problems: string[] = []
  const types = versions.map((v) => avro.Type.forSchema(v.json as avro.Schema))
  for (let r = 0; r < versions.length; r++) {
    for (let w = 0; w < r; w++) {
      const label = `v${versions[r]!.version} (${versions[r]!.file}) reading v${versions[w]!.version} (${versions[w]!.file})`
      const reader = types[r]!
      const writer = types[w]!
      let resolver: avro.Resolver
      try {
        resolver = reader.createResolver(writer)
      } catch (err) {
        problems.push(`${label}: ${(err as Error).message}`)
        continue
      }
      const added = addedFields(reader, versions[r]!.json, versions[w]!.json)
      for (let i = 0; i < samples; i++) {
        const written = writer.random()
        try {
          const read = reader.fromBuffer(writer.toBuffer(written), resolver) as unknown as Record<
            string,
            unknown
          >
          if (!reader.isValid(read)) throw new Error('the value read is not valid for the reader')
          const again = reader.fromBuffer(reader.toBuffer(read))
          if (reader.compare(again, read) !== 0) throw new Error('the value read does not round-trip')
          for (const [name, value] of added) {
            if (JSON.stringify(read[name]) !== JSON.stringify(value))
              throw new Error(`added field ${name} is not its default`)
          }
          for (const name of sharedFields(versions[r]!.json, versions[w]!.json)) {
            const before = (written as unknown as Record<string, unknown>)[name]
            if (JSON.stringify(read[name]) !== JSON.stringify(before))
              throw new Error(`field ${name} changed`)
          }
        } catch (err) {
          problems.push(`${label}: ${(err as Error).message}`)
          break
        }
      }
    }
  }
  return problems
}

interface RecordJson {
  fields: { name: string; type: unknown; default?: unknown }[]
}

// Each added field with its default as avsc fills it in (a record default gets its fields' defaults).
function addedFields(readerType: avro.Type, reader: unknown, writer: unknown): [string, unknown][] {
  const had = new Set((writer as RecordJson).fields.map((f) => f.name))
  const defaults = new Map(
    (readerType as unknown as { fields: { name: string; defaultValue(): unknown }[] }).fields.map((f) => [
      f.name,
      f.defaultValue(),
    ]),
  )
  return (reader as RecordJson).fields
    .filter((f) => !had.has(f.name))
    .map((f) => [f.name, defaults.get(f.name)])
}

// Fields of the same name and the same declared type in both (their values must carry over).
function sharedFields(reader: unknown, writer: unknown): string[] {
  const w = new Map((writer as RecordJson).fields.map((f) => [f.name, JSON.stringify(f.type)]))
  return (reader as RecordJson).fields
    .filter((f) => w.get(f.name) === JSON.stringify(f.type))
    .map((f) => f.name)
}

const NUMERIC = [
  'adgate.minLength',
  'adgate.maxLength',
  'adgate.min',
  'adgate.max',
  'adgate.minItems',
  'adgate.maxItems',
]
const FLAGS = ['adgate.json', 'adgate.rest', 'adgate.derived', 'adgate.body']
export const KNOWN_ATTRIBUTES: readonly string[] = [...NUMERIC, ...FLAGS, 'adgate.micros']

function rightKind(key: string, value: unknown): boolean {
  if (FLAGS.includes(key)) return value === true
  if (key === 'adgate.micros') return typeof value === 'string'
  return typeof value === 'number' && Number.isFinite(value)
}

/** adgate.* attributes that decoders/normalize.ts does not know, or that hold the wrong kind of value. */
export function attributeProblems(json: unknown, path = '$'): string[] {
  const problems: string[] = []
  if (Array.isArray(json)) {
    for (const x of json) problems.push(...attributeProblems(x, path))
    return problems
  }
  if (json === null || typeof json !== 'object') return problems
  const node = json as Record<string, unknown>
  const where = typeof node.name === 'string' ? `${path}.${node.name}` : path
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('adgate.')) {
      if (!KNOWN_ATTRIBUTES.includes(key)) problems.push(`${where}: unknown attribute ${key}`)
      else if (!rightKind(key, value))
        problems.push(`${where}: ${key} has the wrong kind of value ${JSON.stringify(value)}`)
    } else if (typeof value === 'object') {
      problems.push(...attributeProblems(value, `${where}`))
    }
  }
  for (const [lo, hi] of [
    ['adgate.minLength', 'adgate.maxLength'],
    ['adgate.min', 'adgate.max'],
    ['adgate.minItems', 'adgate.maxItems'],
  ] as const) {
    const a = node[lo]
    const b = node[hi]
    if (typeof a === 'number' && typeof b === 'number' && a > b)
      problems.push(`${where}: ${lo} ${a} > ${hi} ${b}`)
  }
  return problems
}
