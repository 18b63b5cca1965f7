// `adgate spool export`: what the spool's quarantine holds (acknowledged events Kafka refused for
// good) comes out as JSON lines, losslessly, and `--remove` takes it out of the spool.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeWire } from '../../events/wire.js'
import { generateEvents } from '../../generator/funnel.js'
import { encodeHeaders, RecordBatchBuilder } from '../../kafka/protocol/record-batch.js'
import { SpoolStore } from '../../spool/store.js'

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

function adgate(dataDir: string, ...args: string[]) {
  const run = spawnSync(process.execPath, [cli, 'spool', ...args], {
    env: { PATH: process.env.PATH, ADGATE_DATA_DIR: dataDir },
    encoding: 'utf8',
  })
  return { code: run.status, out: run.stdout, err: run.stderr }
}

/** A data dir whose spool holds one waiting batch and one quarantined batch of `events`. */
function spoolWithQuarantine(events: object[]): { dataDir: string; path: string } {
  const dataDir = mkdtempSync(join(tmpdir(), 'adgate-cli-spool-'))
  mkdirSync(join(dataDir, 'spool'))
  const path = join(dataDir, 'spool', 'spool.sqlite')
  const builder = new RecordBatchBuilder()
  const headers = encodeHeaders({ 'adgate.source': 'ssp-7', 'adgate.encoding': 'json' })
  for (const e of events)
    builder.add(
      'adgate.impressions',
      2,
      Buffer.from('imp-key'),
      encodeWire(EVENT_SCHEMAS.impression, e),
      headers,
    )
  const out = builder.finish(1_700_000_000_000)
  const b = out.batches[0]!
  const store = new SpoolStore(path)
  const bytes = Buffer.from(out.buffer).subarray(b.offset, b.offset + b.length)
  const [quarantined] = store.append([{ topic: b.topic, partition: b.partition, records: b.records, bytes }])
  store.append([{ topic: b.topic, partition: b.partition, records: b.records, bytes }])
  store.quarantine(
    [quarantined!],
    'Kafka refused the events for adgate.impressions/2: MESSAGE_TOO_LARGE',
    5000,
  )
  store.close()
  return { dataDir, path }
}

describe('adgate spool export', () => {
  it('writes each quarantined record as a JSON line (value, decoded event, headers, refusal); --remove empties the quarantine only', () => {
    const events = generateEvents('impression', 3, 11)
    const { dataDir, path } = spoolWithQuarantine(events)

    const listed = adgate(dataDir, 'export')
    expect(listed.code, listed.err).toBe(0)
    expect(listed.err).toMatch(/1 quarantined batches exported\n/)
    const lines = listed.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toHaveLength(3)
    lines.forEach((line, i) => {
      expect(line).toMatchObject({
        topic: 'adgate.impressions',
        partition: 2,
        key: 'imp-key',
        timestamp: 1_700_000_000_000,
        headers: { 'adgate.source': 'ssp-7', 'adgate.encoding': 'json' },
        reason: expect.stringMatching(/MESSAGE_TOO_LARGE/),
        refused_at: new Date(5000).toISOString(),
        refusals: 1,
      })
      // Lossless: the Kafka record value as it was, and readable: the event it holds.
      expect(Buffer.from(line.value, 'base64').equals(encodeWire(EVENT_SCHEMAS.impression, events[i]))).toBe(
        true,
      )
      expect(line.event.event_id).toBe((events[i] as { event_id: string }).event_id)
    })
    // Export alone changes nothing.
    expect(adgate(dataDir, 'export').out).toBe(listed.out)

    const removed = adgate(dataDir, 'export', '--remove')
    expect(removed.code, removed.err).toBe(0)
    expect(removed.out).toBe(listed.out)
    expect(removed.err).toMatch(/exported and removed/)
    const store = new SpoolStore(path)
    expect(store.stats()).toMatchObject({ entries: 1, records: 3, quarantined: { entries: 0, records: 0 } })
    store.close()
    expect(adgate(dataDir, 'export').out).toBe('')
  })

  it('says what is wrong with a bad command or data dir (exit 2), and has --help', () => {
    const { dataDir } = spoolWithQuarantine(generateEvents('impression', 1, 1))
    expect(adgate(dataDir, 'drop')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/unknown command "drop"/),
    })
    expect(adgate(join(dataDir, 'nowhere'), 'export')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/no spool at/),
    })
    expect(adgate(dataDir, '--help')).toMatchObject({ code: 0, out: expect.stringMatching(/^adgate spool/) })
  })
})
