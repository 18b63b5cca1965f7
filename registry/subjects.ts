import { readFileSync } from 'node:fs'
import type { Config } from '../config/config.js'
import type { Logger } from '../config/logger.js'
import {
  addWriterSchema,
  assignSchemaIds,
  type SchemaVersion,
  SUBJECTS,
  schemaById,
} from '../events/schemas.js'
import { WIRE_HEADER_BYTES } from '../events/wire.js'
import { RegistryError, SchemaRegistryClient } from './client.js'

/** Registry ids by schema file (a plain object: it crosses into the worker threads). */
export type SchemaIds = Readonly<Record<string, number>>

export class SchemaRegistryRefusal extends Error {}

/** The registry client for ADGATE_SCHEMA_REGISTRY_*, or null when no registry is configured. */
export function registryClientFor(config: Config): SchemaRegistryClient | null {
  if (config.schemaRegistryUrl === undefined) return null
  const passwordFile = config.schemaRegistryPasswordFile
  return new SchemaRegistryClient({
    url: config.schemaRegistryUrl,
    user: config.schemaRegistryUser,
    password: passwordFile ? readFileSync(passwordFile, 'utf8').trim() : config.schemaRegistryPassword,
    caFile: config.schemaRegistryCaFile,
  })
}

/**
 * At start-up, with ADGATE_SCHEMA_REGISTRY_URL: register the subjects and write the registry's
 * ids from now on (this thread; pass the result to worker threads). Null when no registry is set.
 */
export async function adoptRegistryIds(config: Config, logger: Logger): Promise<SchemaIds | null> {
  const client = registryClientFor(config)
  if (client === null) return null
  try {
    const ids = await syncSubjects(client)
    assignSchemaIds(ids)
    logger.info(
      { registry: config.schemaRegistryUrl!.origin, ids },
      'schema registry: subjects registered, its ids are written',
    )
    return ids
  } finally {
    client.close()
  }
}

/**
 * Brings the registry up to the repo's schemas (TopicNameStrategy: subject `<topic>-value`):
 * every version of every subject, oldest first, so the registry's history is the repo's. A
 * version already there keeps its id; a new one is first checked against the subject's latest
 * version under the registry's compatibility level, and a refusal stops the start naming the
 * file. Subjects adgate creates get BACKWARD, the rule the repo's versions are tested against.
 */
export async function syncSubjects(
  client: SchemaRegistryClient,
  subjects: ReadonlyMap<string, readonly SchemaVersion[]> = SUBJECTS,
): Promise<SchemaIds> {
  const ids: Record<string, number> = {}
  for (const [subject, versions] of subjects) {
    for (const v of versions) {
      const text = JSON.stringify(v.json)
      const found = await client.lookup(subject, text)
      let id: number
      if (typeof found === 'number') id = found
      else {
        if (found === 'no-schema' && !(await client.compatible(subject, text)))
          throw refusal(subject, v.file, 'is not compatible with its latest version')
        try {
          id = await client.register(subject, text)
        } catch (err) {
          if (err instanceof RegistryError && (err.status === 409 || err.status === 422))
            throw refusal(subject, v.file, err.message)
          throw err
        }
        if (found === 'no-subject') await client.setCompatibility(subject, 'BACKWARD')
      }
      ids[v.file] = id
    }
  }
  return ids
}

function refusal(subject: string, file: string, why: string): SchemaRegistryRefusal {
  return new SchemaRegistryRefusal(
    `the schema registry refuses schemas/${file} as a new version of ${subject}: ${why}`,
  )
}

/**
 * For readers: before a batch is decoded, fetch the writer schemas of ids it holds that are not
 * known yet (records of another producer, or of a newer adgate), once each. Values that are not
 * in the wire format (the correlator's own JSON topics) are left alone.
 */
export class WriterSchemas {
  private readonly missing = new Set<number>()

  constructor(private readonly client: SchemaRegistryClient) {}

  async ensure(values: Iterable<Buffer>): Promise<void> {
    this.missing.clear()
    for (const v of values)
      if (v.length >= WIRE_HEADER_BYTES && v[0] === 0) {
        const id = v.readInt32BE(1)
        if (schemaById(id) === undefined) this.missing.add(id)
      }
    for (const id of this.missing) {
      try {
        addWriterSchema(id, await this.client.schemaById(id))
      } catch (err) {
        // Unknown to the registry too: its records stay undecodable and are counted as such.
        if (!(err instanceof RegistryError && err.status === 404)) throw err
      }
    }
  }
}
