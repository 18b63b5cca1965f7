import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import avro from 'avsc'
import { describe, expect, it } from 'vitest'
import { compileNormalizer } from '../../decoders/normalize.js'
import { DLQ_TOPIC, EVENT_INFO, EVENT_TYPES } from '../../events/catalog.js'
import { schemaModel } from '../../events/schema-model.js'
import { SCHEMA_DIR, SUBJECTS, subjectOf } from '../../events/schemas.js'
import {
  attributeProblems,
  avscFiles,
  compatibilityProblems,
  readRegistry,
  readSchema,
  type VersionedSchema,
} from './compatibility.js'

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')
const registry = readRegistry(SCHEMA_DIR)

function versionsOf(subject: string): VersionedSchema[] {
  return registry.subjects[subject]!.map((v) => ({
    version: v.version,
    file: v.file,
    json: readSchema(join(SCHEMA_DIR, v.file)),
  }))
}

function fixture(file: string): VersionedSchema {
  return { version: 2, file, json: readSchema(join(FIXTURES, file)) }
}

describe('schema registry', () => {
  it('lists files that exist and parse as Avro schemas', () => {
    for (const versions of Object.values(registry.subjects)) {
      for (const v of versions) {
        expect(existsSync(join(SCHEMA_DIR, v.file)), v.file).toBe(true)
        expect(() => avro.Type.forSchema(readSchema(join(SCHEMA_DIR, v.file)) as avro.Schema)).not.toThrow()
      }
    }
  })

  it('registers every .avsc file in schemas/', () => {
    const registered = new Set(Object.values(registry.subjects).flatMap((vs) => vs.map((v) => v.file)))
    expect(avscFiles(SCHEMA_DIR).sort()).toEqual([...registered].sort())
  })

  it('gives every version a unique schema id', () => {
    const ids = Object.values(registry.subjects).flatMap((vs) => vs.map((v) => v.id))
    expect(ids.length).toBeGreaterThan(0)
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids) expect(Number.isInteger(id) && id > 0 && id < 2 ** 31).toBe(true)
  })

  it('numbers the versions of a subject 1, 2, 3…', () => {
    for (const versions of Object.values(registry.subjects)) {
      expect(versions.map((v) => v.version)).toEqual(versions.map((_, i) => i + 1))
    }
  })

  it('has one subject per topic, and loads them all', () => {
    const topics = [...EVENT_TYPES.map((t) => EVENT_INFO[t].topic), DLQ_TOPIC]
    expect(Object.keys(registry.subjects).sort()).toEqual(topics.map(subjectOf).sort())
    expect([...SUBJECTS.keys()].sort()).toEqual(Object.keys(registry.subjects).sort())
  })

  it.each(Object.keys(registry.subjects))(
    '%s: every version reads data written by every earlier one',
    (subject) => {
      expect(compatibilityProblems(versionsOf(subject))).toEqual([])
    },
  )

  it.each(avscFiles(SCHEMA_DIR))(
    '%s uses only known adgate.* attributes, with values of the right kind',
    (file) => {
      expect(attributeProblems(readSchema(join(SCHEMA_DIR, file)))).toEqual([])
    },
  )

  it.each(EVENT_TYPES)('the %s schema compiles into a validator in every input mode', (type) => {
    const json = readSchema(
      join(SCHEMA_DIR, registry.subjects[subjectOf(EVENT_INFO[type].topic)]!.at(-1)!.file),
    )
    for (const mode of ['json', 'text', 'avro'] as const)
      expect(() => compileNormalizer(schemaModel(json), mode)).not.toThrow()
  })
})

describe('the compatibility check itself', () => {
  const v1 = versionsOf('adgate.impressions-value').slice(0, 1)

  it('accepts a v2 that adds fields with defaults and drops one', () => {
    expect(compatibilityProblems([...v1, fixture('impression.v2-compatible.avsc')])).toEqual([])
  })

  it('reports a v2 that adds a required field without a default', () => {
    const problems = compatibilityProblems([...v1, fixture('impression.v2-breaking.avsc')])
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/v2 \(impression\.v2-breaking\.avsc\) reading v1 \(impression\.v1\.avsc\)/)
    expect(problems[0]).toMatch(/viewability/)
  })

  it('checks every earlier version, not only the one before (transitive)', () => {
    // v3 makes v2's new field required: it reads v2 data, which has the field, but not v1 data.
    const v2 = fixture('impression.v2-compatible.avsc')
    const json = v2.json as { fields: { name: string; default?: unknown }[] }
    const v3 = {
      version: 3,
      file: 'v3',
      json: {
        ...json,
        fields: json.fields.map((f) => (f.name === 'bid_floor_micros' ? { ...f, default: undefined } : f)),
      },
    }
    const problems = compatibilityProblems([...v1, v2, v3])
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^v3 \(v3\) reading v1 .*bid_floor_micros/)
  })

  it('reports unknown adgate.* attributes and values of the wrong kind', () => {
    const problems = attributeProblems(readSchema(join(FIXTURES, 'impression.bad-attributes.avsc')))
    expect(problems).toEqual([
      '$.Impression.event_id: unknown attribute adgate.maxlength',
      '$.Impression.event_time: adgate.min has the wrong kind of value "0"',
      '$.Impression.cost_micros: adgate.json has the wrong kind of value false',
    ])
    expect(
      attributeProblems({ name: 'x', type: 'string', 'adgate.minLength': 5, 'adgate.maxLength': 2 }),
    ).toEqual(['$.x: adgate.minLength 5 > adgate.maxLength 2'])
  })
})
