// The correlator with ADGATE_SCHEMA_REGISTRY_URL against the real registry (Apicurio): adgate's
// records under the registry's ids, and impressions of another writer whose schema (one field
// more) only the registry knows, all decoded and counted.
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import avro from 'avsc'
import { afterAll, describe, expect, it } from 'vitest'
import { startCorrelator } from '../../cli/correlator.js'
import { loadConfig } from '../../config/config.js'
import { createLogger } from '../../config/logger.js'
import type { StatsRow } from '../../correlator/storage.js'
import { EVENT_INFO } from '../../events/catalog.js'
import { assignSchemaIds, EVENT_SCHEMAS } from '../../events/schemas.js'
import { decodeWire, WIRE_HEADER_BYTES, writeWireHeader } from '../../events/wire.js'
import { SchemaRegistryClient } from '../../registry/client.js'
import { syncSubjects } from '../../registry/subjects.js'
import { ArraySource } from '../support/array-source.js'
import { funnelEvents, type Logs, PARTITIONS, toLogs } from '../support/funnel-records.js'
import { ensureRegistry } from '../support/registry.js'

const dir = mkdtempSync(join(tmpdir(), 'adgate-registry-correlator-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let runs = 0

/** One correlator run over `logs` to its end: its hourly rows, and whether any record was undecodable. */
async function correlate(
  logs: Logs,
  env: Record<string, string>,
): Promise<{ rows: StatsRow[]; undecodable: boolean }> {
  const config = loadConfig({
    ADGATE_STORAGE: `duckdb:${join(dir, `c${runs++}.duckdb`)}`,
    ADGATE_CORRELATOR_PORT: '0',
    HOST: '127.0.0.1',
    ADGATE_ANOMALIES: 'off',
    ...env,
  })
  const running = await startCorrelator(
    config,
    createLogger('silent', 'test'),
    new ArraySource(logs, 50, PARTITIONS),
    null,
  )
  try {
    await running.done
    const metrics = await (await fetch(`http://127.0.0.1:${running.port}/metrics`)).text()
    return {
      rows: await running.storage.stats({ granularity: 'hour' }),
      undecodable: /^adgate_correlator_undecodable_total [1-9]/m.test(metrics),
    }
  } finally {
    await running.close()
  }
}

describe('the correlator with a schema registry', () => {
  it('decodes adgate records under the registry ids and another writer’s, fetched by id', async ({
    skip,
  }) => {
    const url = await ensureRegistry()
    if (!url) return skip()
    const events = funnelEvents({ seed: 77, bids: 600, duplicates: 0 })
    // Baseline: the same events under the built-in ids, without a registry.
    const baseline = await correlate(toLogs(events), {})
    const client = new SchemaRegistryClient({ url: new URL(url) })
    try {
      // This process writes as the gateway would with the registry: its ids.
      assignSchemaIds(await syncSubjects(client))
      const impression = EVENT_SCHEMAS.impression.json as unknown as { fields: object[] }
      const foreignJson = {
        ...impression,
        fields: [...impression.fields, { name: 'x_extra', type: 'string', default: '' }],
      }
      const foreignId = await client.register(
        `adgate.test-${randomUUID()}-value`,
        JSON.stringify(foreignJson),
      )
      const foreign = avro.Type.forSchema(foreignJson as avro.Schema)

      const logs = toLogs(events)
      let rewritten = 0
      for (const [key, log] of logs) {
        if (!key.startsWith(`${EVENT_INFO.impression.topic}:`)) continue
        for (const r of log) {
          const body = foreign.toBuffer({
            ...(decodeWire(r.value).value as object),
            x_extra: 'from another writer',
          })
          const value = Buffer.alloc(WIRE_HEADER_BYTES + body.length)
          writeWireHeader(value, 0, foreignId)
          body.copy(value, WIRE_HEADER_BYTES)
          r.value = value
          rewritten++
        }
      }
      expect(rewritten).toBe(events.filter((e) => e.type === 'impression').length)

      const withRegistry = await correlate(logs, { ADGATE_SCHEMA_REGISTRY_URL: url })
      expect(withRegistry.undecodable).toBe(false)
      expect(withRegistry.rows.reduce((n, r) => n + r.impressions, 0)).toBeGreaterThan(0)
      expect(withRegistry.rows).toEqual(baseline.rows)
    } finally {
      client.close()
    }
  }, 240_000)
})
