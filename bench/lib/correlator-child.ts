// A correlator process for the recovery benchmark (bench/correlator.ts): `fill <file> <n>` builds
// n open keys, checkpoints them and waits to be killed with SIGKILL; `recover <file> <n>` restarts
// on the same file and reports how long until it is live again (state restored, new batch written).
import { Correlator } from '../../correlator/correlator.js'
import { DEFAULT_RULES } from '../../correlator/rules.js'
import { inputTopics } from '../../correlator/topics.js'
import { DuckDbStorage } from '../../storage/duckdb.js'
import { LogSource, openKeyLogs, PARTITIONS } from './correlator-workload.js'

const [mode, file, n] = process.argv.slice(2) as [string, string, string]
const keys = Number(n)
// The recovering process sees the same logs plus 1000 new events.
const logs = openKeyLogs(keys + (mode === 'recover' ? 1000 : 0))
process.stdout.write('GENERATED\n')
const t0 = performance.now()
const cpu0 = process.cpuUsage()
const storage = await DuckDbStorage.open(file)
const source = new LogSource(logs, 20_000, async () => {
  if (mode === 'fill') {
    process.stdout.write(`READY ${c.pipeline.openKeys()}\n`)
    await new Promise(() => {}) // wait for SIGKILL
  }
  return false
})
if (mode === 'recover') {
  // Where a Kafka consumer group would resume: the checkpointed positions.
  for (let p = 0; p < PARTITIONS; p++) {
    const load = await storage.load(p, inputTopics(false))
    await source.commit(load.checkpoint?.positions ?? [])
  }
}
let firstWrite = true
const c = new Correlator(
  {
    rules: DEFAULT_RULES,
    storage,
    source,
    checkpointMs: mode === 'fill' ? 0 : 3_600_000,
    idleMs: 3_600_000,
    writeEveryRecords: 50_000,
    lingerMs: 1_000_000,
    onBatch: (s) => {
      if (mode === 'recover' && firstWrite && s.events > 0) {
        firstWrite = false
        const cpu = process.cpuUsage(cpu0)
        process.stdout.write(
          `LIVE ${performance.now() - t0} ${c.pipeline.openKeys()} ${(cpu.user + cpu.system) / 1000}\n`,
        )
      }
    },
  },
  PARTITIONS,
)
await c.start()
await c.stop()
await storage.close()
