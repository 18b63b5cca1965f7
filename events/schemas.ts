import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type avro from 'avsc'
import { avroType } from './avro-types.js'
import { DLQ_TOPIC, EVENT_INFO, EVENT_TYPES, type EventType } from './catalog.js'
import { type RecordNode, schemaModel } from './schema-model.js'

/** The schema files live in <repo>/schemas; this module runs from the sources or from dist/. */
export const SCHEMA_DIR = findSchemaDir(dirname(fileURLToPath(import.meta.url)))

function findSchemaDir(from: string): string {
  let dir = from
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'schemas')
    try {
      readFileSync(join(candidate, 'registry.json'))
      return candidate
    } catch {
      dir = dirname(dir)
    }
  }
  throw new Error(`adgate: cannot find schemas/registry.json above ${from}`)
}

export interface SchemaVersion {
  readonly subject: string
  readonly version: number
  /** Id written after the magic byte in the Confluent wire format. */
  readonly id: number
  readonly file: string
  /** The parsed .avsc JSON, with adgate's extra attributes (bounds) intact. */
  readonly json: avro.Schema
  readonly type: avro.Type
  /** The one description every schema walk reads (events/schema-model.ts). */
  readonly model: RecordNode
}

interface RegistryFile {
  subjects: Record<string, { version: number; id: number; file: string }[]>
}

function load(): Map<string, SchemaVersion[]> {
  const registry = JSON.parse(readFileSync(join(SCHEMA_DIR, 'registry.json'), 'utf8')) as RegistryFile
  const subjects = new Map<string, SchemaVersion[]>()
  for (const [subject, versions] of Object.entries(registry.subjects)) {
    subjects.set(
      subject,
      versions.map((v) =>
        lazyVersion(subject, v, JSON.parse(readFileSync(join(SCHEMA_DIR, v.file), 'utf8'))),
      ),
    )
  }
  return subjects
}

// avsc's type and the model are built on first use: the OpenRTB bid schema takes a few hundred
// milliseconds, which a decode worker serving only impressions should not pay when it starts.
function lazyVersion(
  subject: string,
  v: { version: number; id: number; file: string },
  json: avro.Schema,
): SchemaVersion {
  let type: avro.Type | undefined
  let model: RecordNode | undefined
  return {
    subject,
    version: v.version,
    id: v.id,
    file: v.file,
    json,
    get type() {
      type ??= avroType(json)
      return type
    },
    get model() {
      model ??= schemaModel(json, this.type)
      return model
    },
  }
}

export const SUBJECTS: ReadonlyMap<string, readonly SchemaVersion[]> = load()

export function subjectOf(topic: string): string {
  return `${topic}-value`
}

function latest(subject: string): SchemaVersion {
  const versions = SUBJECTS.get(subject)
  if (!versions || versions.length === 0) throw new Error(`adgate: no schema registered for ${subject}`)
  return versions[versions.length - 1]!
}

/** The schema adgate writes (and validates input against) for each event type: the newest version. */
export const EVENT_SCHEMAS: Readonly<Record<EventType, SchemaVersion>> = Object.freeze(
  Object.fromEntries(EVENT_TYPES.map((t) => [t, latest(subjectOf(EVENT_INFO[t].topic))])) as Record<
    EventType,
    SchemaVersion
  >,
)

export const DLQ_SCHEMA: SchemaVersion = latest(subjectOf(DLQ_TOPIC))

const BY_ID = new Map<number, SchemaVersion>()
for (const versions of SUBJECTS.values()) for (const v of versions) BY_ID.set(v.id, v)

/** Lookup for readers of the wire format (the correlator, tests). */
export function schemaById(id: number): SchemaVersion | undefined {
  return BY_ID.get(id) ?? WRITERS.get(id)
}

/**
 * With a schema registry (ADGATE_SCHEMA_REGISTRY_URL) the ids in the wire format are the
 * registry's, by schema file. Set once at start-up, in every thread (the decode workers get them
 * at pool creation), before any record is encoded: encoders read `schema.id` when they frame.
 */
export function assignSchemaIds(ids: Readonly<Record<string, number>>): void {
  BY_ID.clear()
  for (const versions of SUBJECTS.values())
    for (const v of versions) {
      const id = ids[v.file]
      if (id === undefined) throw new Error(`adgate: the schema registry gave no id for ${v.file}`)
      ;(v as { id: number }).id = id
      BY_ID.set(id, v)
    }
}

/** Writer schemas of other producers (or newer adgate versions) met by readers: bounded, oldest out. */
const WRITERS = new Map<number, SchemaVersion>()
const MAX_WRITERS = 256

/** Keep a writer schema fetched from the registry by id, so wire-format records under it decode. */
export function addWriterSchema(id: number, text: string): SchemaVersion {
  const json = JSON.parse(text) as avro.Schema
  const type = avroType(json)
  const schema: SchemaVersion = {
    subject: '',
    version: 0,
    id,
    file: '',
    json,
    type,
    model: schemaModel(json, type),
  }
  if (WRITERS.size >= MAX_WRITERS) WRITERS.delete(WRITERS.keys().next().value!)
  WRITERS.set(id, schema)
  return schema
}
