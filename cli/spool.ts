import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config/config.js'
import { decodeWire } from '../events/wire.js'
import { decodeRecordBatch } from '../kafka/protocol/record-batch.js'
import { type QuarantinedEntry, SpoolStore } from '../spool/store.js'
import { UsageError } from './gen.js'

export const SPOOL_HELP = `adgate spool — the local spool's quarantine

Usage: adgate spool export [--remove]

Batches Kafka refused for good after the gateway had answered 200 for them (a topic's
max.message.bytes lowered, records it calls invalid) are kept in the spool's quarantine under
ADGATE_DATA_DIR/spool, offered to Kafka again every minute (adgate_spool_quarantined_events).

  export     writes every quarantined record to stdout, one JSON object per line:
             topic, partition, key, timestamp, headers, value (the Kafka record value,
             base64: Confluent wire format), event (that value decoded, when its schema
             id is one of adgate's own), reason (Kafka's refusal), refused_at, refusals
  --remove   then deletes the exported batches from the quarantine (they will not reach
             Kafka from this spool any more). A running gateway notices within a minute;
             a retry it had under way may still write them to Kafka as well.
`

export async function spool(argv: string[], config: Config): Promise<number> {
  if (argv.includes('--help')) {
    process.stdout.write(SPOOL_HELP)
    return 0
  }
  const [command, ...options] = argv
  if (command !== 'export')
    throw new UsageError(`adgate spool: unknown command ${JSON.stringify(command)} (adgate spool --help)`)
  const remove = options.includes('--remove')
  const unknown = options.filter((o) => o !== '--remove')
  if (unknown.length > 0) throw new UsageError(`unknown option ${unknown[0]} (adgate spool --help)`)
  const path = join(config.dataDir, 'spool', 'spool.sqlite')
  if (!existsSync(path)) throw new UsageError(`no spool at ${path} (ADGATE_DATA_DIR)`)
  const store = new SpoolStore(path)
  try {
    let after = 0
    const exported: number[] = []
    for (;;) {
      const entries = store.quarantined(after, 4 * 1024 * 1024)
      if (entries.length === 0) break
      for (const e of entries) await write(exportLines(e))
      after = entries[entries.length - 1]!.id
      exported.push(...entries.map((e) => e.id))
    }
    if (remove) store.removeQuarantined(exported)
    process.stderr.write(
      `adgate spool: ${exported.length} quarantined batches exported${remove ? ' and removed' : ''}\n`,
    )
  } finally {
    store.close()
  }
  return 0
}

/** One JSON line per record of a quarantined batch. */
function exportLines(e: QuarantinedEntry): string {
  const { firstTimestamp, records } = decodeRecordBatch(e.bytes, undefined, true)
  let out = ''
  for (const r of records) {
    const line = {
      topic: e.topic,
      partition: e.partition,
      key: r.key?.toString() ?? null,
      timestamp: firstTimestamp,
      headers: r.headers,
      value: r.value.toString('base64'),
      event: decoded(r.value),
      reason: e.reason,
      refused_at: new Date(e.refusedAt).toISOString(),
      refusals: e.refusals,
    }
    out += `${JSON.stringify(line, jsonSafe)}\n`
  }
  return out
}

/** Longs as decimal strings and bytes (a dead letter's raw) as base64, as JSON has neither. */
function jsonSafe(_: string, v: unknown): unknown {
  if (typeof v === 'bigint') return String(v)
  const b = v as { type?: unknown; data?: unknown } | null
  if (b?.type === 'Buffer' && Array.isArray(b.data)) return Buffer.from(b.data as number[]).toString('base64')
  return v
}

/** The value as adgate's schema reads it; null when its schema id is not one of adgate's own (a registry's). */
function decoded(value: Buffer): unknown {
  try {
    return decodeWire(value).value
  } catch {
    return null
  }
}

/** Writes honour stdout's back-pressure (an export can be larger than memory would like). */
function write(text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(text, (err) => (err ? reject(err) : resolve())),
  )
}
