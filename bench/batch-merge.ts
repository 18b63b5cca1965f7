import { loadavg } from 'node:os'
import { threadCpuMs } from '../decoders/cpu-clock.js'
import { mergeRecordBatches, mergeRecordBatchGroups, mergesOffThread } from '../kafka/protocol/batch-merge.js'
import { encodeHeaders, RecordBatchBuilder } from '../kafka/protocol/record-batch.js'
import type { RunOptions } from './lib/module.js'
import type { BenchResult } from './lib/results.js'
import { median } from './lib/stats.js'

export const description =
  "the producer's batch merge by size: the native merge on the libuv threadpool (one job at a time, as a leader waits for its job) against the JS merge on the loop; event-loop and process CPU per merge, in one process, interleaved"

/**
 * What moving a merge (kafka/protocol/batch-merge.ts) off the event loop saves the loop, and what
 * it costs the process, by the merge's size: 2 worker-written batches of 1 to 100 records of
 * ~300-byte JSON values (a 100-event request over 4 partitions makes 25-record batches; mixed
 * traffic's small requests over many lanes, batches of a few records). The native jobs go one at a
 * time, each awaited, as a leader waits for its job: each one wakes a threadpool thread and then
 * the loop, the fixed cost that decides which merges are worth the hop (MIN_OFF_LOOP_MERGE_BYTES).
 */
function workerBatch(n: number, records: number): Buffer {
  const builder = new RecordBatchBuilder()
  const headers = encodeHeaders({
    'adgate.source': 'bench',
    'adgate.request_id': `r-${n}`,
    'adgate.encoding': 'json',
  })
  for (let i = 0; i < records; i++) {
    const value = {
      id: `${n}-${i}-${(n * 7919 + i * 104729) % 1_000_003}`,
      campaign: `c${i % 7}`,
      creative: `cr-${(i * 31) % 97}`,
      price: (n * 31 + i * 17) % 1_000_000,
      ts: 1_700_000_000_000 + n,
      ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
      url: `https://example.com/p/${i}`,
    }
    builder.add('t', 0, Buffer.from(`imp-${n}-${i}`), Buffer.from(JSON.stringify(value)), headers)
  }
  const { buffer, batches } = builder.finish(1_700_000_000_000 + n)
  return Buffer.from(buffer.subarray(0, batches[0]!.length))
}

const processCpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const offThread = (groups: Buffer[][]) =>
  new Promise<unknown>((resolve) => mergeRecordBatchGroups(groups, resolve))

export async function run(options: RunOptions): Promise<BenchResult[]> {
  if (!mergesOffThread) throw new Error('the native addon is not built: nothing to compare')
  const merges = options.quick ? 20 : 300
  const rounds = options.quick ? 2 : 11
  const PARTS = 2
  const results: BenchResult[] = []
  for (const records of [1, 4, 12, 25, 50, 100, 200, 400]) {
    const groups = Array.from({ length: merges }, (_, g) =>
      Array.from({ length: PARTS }, (_, i) => workerBatch(g * 10 + i, records)),
    )
    let bytes = 0
    for (const g of groups) for (const b of g) bytes += b.length
    const loop = { native: [] as number[], js: [] as number[] }
    const all = { native: [] as number[], js: [] as number[] }
    for (let r = 0; r < rounds; r++)
      for (const side of r % 2 === 0 ? (['native', 'js'] as const) : (['js', 'native'] as const)) {
        const [t0, p0] = [threadCpuMs(), processCpuMs()]
        if (side === 'js') for (const g of groups) mergeRecordBatches(g)
        else for (const g of groups) await offThread([g])
        loop[side].push(((threadCpuMs() - t0) / merges) * 1000)
        all[side].push(((processCpuMs() - p0) / merges) * 1000)
      }
    const c = `${PARTS} batches of ${records} records (${Math.round(bytes / merges)} bytes a merge), ${merges} merges × ${rounds} interleaved rounds, median, load ${loadavg()[0]!.toFixed(1)}`
    const row = (metric: string, of: typeof loop): BenchResult => {
      const value = Math.round(median(of.native) * 10) / 10
      const baseline = Math.round(median(of.js) * 10) / 10
      return {
        case: c,
        metric,
        value,
        unit: 'µs',
        baseline,
        ratio: Math.round((value / baseline) * 1000) / 1000,
      }
    }
    results.push(row('event_loop_cpu_us_per_merge', loop), row('process_cpu_us_per_merge', all))
  }
  return results
}
