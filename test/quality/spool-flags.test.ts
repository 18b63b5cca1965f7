// The embedded mode's path for quality flags: a worker task's record batches made durable in the
// real spool (SQLite, its own thread) and read back by the correlator's SpoolSource, which hands
// each record's adgate.quality_flags header on with it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { SourceRecord } from '../../correlator/source.js'
import { SpoolSource } from '../../correlator/spool-source.js'
import { decodeWire } from '../../events/wire.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { useRules } from '../../quality/rules-channel.js'
import { openCompiledSpool } from '../support/compiled-spool.js'
import { runOneBody } from '../support/decode-task.js'
import { FLAG_NOT_DE, useTestRules } from '../support/rules.js'

const dir = mkdtempSync(join(tmpdir(), 'adgate-spool-flags-'))
afterEach(() => {
  useRules(null)
  rmSync(dir, { recursive: true, force: true })
})

describe('quality flags through the spool', () => {
  it('reach the correlator with their records', async () => {
    useTestRules([FLAG_NOT_DE])
    const events: Record<string, unknown>[] = generateEvents('impression', 20, 8).map((e, i) => ({
      ...e,
      country: i % 4 === 0 ? 'FR' : 'DE',
    }))
    const body = encodeEvents('impression', events, 'csv')
    const facts = { type: 'impression', encoding: 'csv', source: 'ssp-a', ingestTime: Date.now() } as const
    const partitions = { 'adgate.impressions': 2, 'adgate.dlq': 1 }
    const result = runOneBody(body, facts, { maxBytes: 1 << 24, maxEvents: 1000, partitions })
    expect(result.outcomes[0]).toMatchObject({ events: 20, flagged: 5 })

    const spool = await openCompiledSpool(dir, 1 << 24)
    await spool.append({ buffer: Buffer.from(result.buffer), batches: result.batches })
    const records: SourceRecord[] = []
    const source = new SpoolSource(spool, 2, (err) => {
      throw err
    })
    await source.start({
      onBatch: async (batch) => {
        records.push(...batch)
      },
    })
    while (records.length < 20) await new Promise((r) => setTimeout(r, 10))
    await source.stop()
    await spool.close()
    const flagged = records
      .filter((r) => r.flags)
      .map((r) => [(decodeWire(r.value).value as { event_id: string }).event_id, r.flags])
      .sort()
    expect(flagged).toEqual(
      events
        .filter((_, i) => i % 4 === 0)
        .map((e) => [e.event_id, 'imp.country'])
        .sort(),
    )
    expect(records.filter((r) => !r.flags).every((r) => r.flags === null)).toBe(true)
  })
})
