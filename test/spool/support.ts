// Shared by the spool tests: the compiled spool, a logger that keeps what it is told, one-batch
// spool entries, and polling for a condition.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RecordBatchBuilder } from '../../kafka/protocol/record-batch.js'
import type { Spool } from '../../spool/spool.js'
import { openCompiledSpool } from '../support/compiled-spool.js'

const NO_HEADERS = Buffer.from([0])

/** The compiled spool in a new temporary directory. */
export function openSpool(prefix = 'adgate-spool-'): Promise<Spool> {
  return openCompiledSpool(mkdtempSync(join(tmpdir(), prefix)), 1 << 26)
}

/** A logger that keeps what it is told. */
export function recordingLogger() {
  const lines: { level: string; obj: unknown; msg: string }[] = []
  const at = (level: string) => (obj: unknown, msg: string) => lines.push({ level, obj, msg })
  return {
    lines,
    logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as never,
  }
}

/** One spool entry: `values` as one record batch for `partition`. */
export function batch(topic: string, values: Buffer[], partition = 0) {
  const builder = new RecordBatchBuilder()
  for (const v of values) builder.add(topic, partition, null, v, NO_HEADERS)
  const out = builder.finish(Date.now())
  return { buffer: Buffer.from(out.buffer), batches: out.batches }
}

export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
