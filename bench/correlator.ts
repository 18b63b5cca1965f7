import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Correlator } from '../correlator/correlator.js'
import { KafkaRekeyProducer, KafkaSource } from '../correlator/kafka-source.js'
import { DEFAULT_RULES } from '../correlator/rules.js'
import type { PartitionLoad, Storage } from '../correlator/storage.js'
import { inputTopics, topicNames } from '../correlator/topics.js'
import { DuckDbStorage } from '../storage/duckdb.js'
import { MemoryStorage } from '../storage/memory.js'
import { PostgresStorage } from '../storage/postgres.js'
import {
  count,
  funnelLogs,
  LogSource,
  type Logs,
  openKeyLogs,
  PARTITIONS,
} from './lib/correlator-workload.js'
import { createFunnelTopics, dropBenchTopics, funnelProducer, produceRecords } from './lib/funnel-kafka.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, REPO_ROOT } from './lib/results.js'
import { BROKERS as SERVER_BROKERS } from './lib/servers.js'
import { median } from './lib/stats.js'
import { correlatorVsStreams } from './lib/streams-peer.js'

export const description =
  'correlator: events/s per core through joins, aggregates and storage (memory, DuckDB, PostgreSQL); Kafka lag p99; state bytes per open key; recovery after kill -9; the same joins against a Kafka Streams application on the same topics'

// The broker ensureKafka() starts (KAFKA_PORT), as the streams case uses, unless KAFKA_BROKERS names others.
const BROKERS = SERVER_BROKERS.split(',')

/** Writes nothing: isolates the joins' own memory. */
class NullStorage implements Storage {
  readonly kind = 'null'
  async load(): Promise<PartitionLoad> {
    return { checkpoint: null, positions: new Map() }
  }
  async write(): Promise<void> {}
  async stats() {
    return []
  }
  async close(): Promise<void> {}
}

/** One pass of the funnel through a fresh correlator: wall events/s and events per CPU-second. */
export async function throughput(
  logs: Logs,
  storage: Storage,
  options: { rawEvents?: boolean } = {},
): Promise<{ wall: number; perCore: number }> {
  const n = count(logs)
  const c = new Correlator(
    {
      rules: DEFAULT_RULES,
      storage,
      source: new LogSource(logs, 20_000),
      checkpointMs: 5000,
      idleMs: 3_600_000,
      writeEveryRecords: 50_000,
      lingerMs: 200,
      ...options,
    },
    PARTITIONS,
  )
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await c.start()
  await c.stop()
  const s = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  await storage.close()
  return { wall: n / s, perCore: n / ((cpu.user + cpu.system) / 1e6) }
}

/** A PostgreSQL database for the bench: BENCH_POSTGRES_URL, or a throw-away one on the local cluster. */
export function postgres(): { url: string; drop: () => void } | null {
  if (process.env.BENCH_POSTGRES_URL) return { url: process.env.BENCH_POSTGRES_URL, drop: () => {} }
  const psql = (sql: string) =>
    spawnSync('runuser', ['-u', 'postgres', '--', 'psql', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql])
      .status === 0
  spawnSync('pg_ctlcluster', ['15', 'main', 'start'])
  const name = `adgate_bench_${randomBytes(4).toString('hex')}`
  const password = randomBytes(12).toString('hex')
  if (!psql(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`)) return null
  psql(`CREATE DATABASE ${name} OWNER ${name}`)
  return {
    url: `postgres://${name}:${password}@127.0.0.1:5432/${name}`,
    drop: () => {
      psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      psql(`DROP ROLE IF EXISTS ${name}`)
    },
  }
}

async function throughputCases(quick: boolean, dir: string): Promise<BenchResult[]> {
  const bids = quick ? 5_000 : 150_000
  const logs = funnelLogs(bids, 1)
  const events = count(logs)
  const pg = postgres()
  const sinks: [string, () => Promise<Storage>][] = [
    ['memory (joins + aggregates, no I/O)', async () => new MemoryStorage()],
    ['DuckDB', async () => DuckDbStorage.open(join(dir, `t-${randomBytes(4).toString('hex')}.duckdb`))],
  ]
  if (pg)
    sinks.push([
      'PostgreSQL (this process only; server CPU is not counted)',
      async () => PostgresStorage.open(await freshSchema(pg.url)),
    ])
  const runs = new Map<string, { wall: number; perCore: number }[]>()
  try {
    for (let round = 0; round < (quick ? 1 : 3); round++) {
      for (const [name, open] of sinks) {
        const r = await throughput(logs, await open())
        runs.set(name, [...(runs.get(name) ?? []), r])
      }
    }
  } finally {
    pg?.drop()
  }
  const out: BenchResult[] = []
  const base = median(runs.get(sinks[0]![0])!.map((r) => r.perCore))
  for (const [name] of sinks) {
    const rs = runs.get(name)!
    const perCore = median(rs.map((r) => r.perCore))
    const label = `funnel of ${events} events (${bids} bids, dups, disorder) → ${name}`
    out.push({
      case: label,
      metric: 'events/s per core',
      value: Math.round(perCore),
      unit: 'events/CPU-s',
      ...(name === sinks[0]![0] ? {} : { baseline: Math.round(base), ratio: round3(perCore / base) }),
    })
    out.push({
      case: label,
      metric: 'events/s wall',
      value: Math.round(median(rs.map((r) => r.wall))),
      unit: 'events/s',
    })
  }
  return out
}

/** Each throughput run gets an empty database: a schema per run would do, a database is simpler. */
export async function freshSchema(url: string): Promise<string> {
  const pg = (await import('pg')).default
  const name = `run_${randomBytes(4).toString('hex')}`
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  await c.query(`CREATE SCHEMA ${name}`)
  await c.end()
  const u = new URL(url)
  u.searchParams.set('options', `-c search_path=${name}`)
  return u.toString()
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}

function gc(): void {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

async function stateBytes(quick: boolean): Promise<BenchResult[]> {
  const n = quick ? 20_000 : 1_000_000
  const logs = openKeyLogs(n)
  gc()
  const before = process.memoryUsage().heapUsed
  const c = new Correlator(
    {
      rules: DEFAULT_RULES,
      storage: new NullStorage(),
      source: new LogSource(logs, 20_000),
      checkpointMs: 3_600_000,
      idleMs: 3_600_000,
    },
    PARTITIONS,
  )
  await c.start()
  gc()
  const after = process.memoryUsage().heapUsed
  const keys = c.pipeline.openKeys()
  await c.stop()
  return [
    {
      case: `${keys} open keys (impressions waiting for clicks, with their dedup ids)`,
      metric: 'state per open key',
      value: Math.round((after - before) / keys),
      unit: 'bytes',
    },
  ]
}

function child(args: string[]): { proc: ChildProcess; lines: AsyncIterableIterator<string> } {
  const proc = spawn(
    process.execPath,
    [join(REPO_ROOT, 'dist', 'bench', 'lib', 'correlator-child.js'), ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  async function* lines() {
    let buf = ''
    for await (const chunk of proc.stdout!) {
      buf += chunk.toString()
      let i = buf.indexOf('\n')
      while (i >= 0) {
        yield buf.slice(0, i)
        buf = buf.slice(i + 1)
        i = buf.indexOf('\n')
      }
    }
  }
  return { proc, lines: lines() }
}

async function recovery(quick: boolean, dir: string): Promise<BenchResult[]> {
  const n = quick ? 20_000 : 1_000_000
  const file = join(dir, 'recovery.duckdb')
  const fill = child(['fill', file, String(n)])
  let open = 0
  for await (const line of fill.lines) {
    if (line.startsWith('READY')) {
      open = Number(line.split(' ')[1])
      break
    }
  }
  const exited = new Promise((r) => fill.proc.once('exit', r))
  fill.proc.kill('SIGKILL')
  await exited
  const rec = child(['recover', file, String(n)])
  let ms = Number.NaN
  let cpuMs = Number.NaN
  let restored = 0
  for await (const line of rec.lines) {
    if (line.startsWith('LIVE')) {
      const [, t, k, c] = line.split(' ')
      ms = Number(t)
      restored = Number(k)
      cpuMs = Number(c)
    }
  }
  const label = `kill -9 with ${open} open keys, restart: open DuckDB, load checkpoint, first new batch written (${restored} keys after)`
  // The CPU time is the figure to compare across runs: on a shared machine the wall time follows the load.
  return [
    { case: label, metric: 'recovery time', value: Math.round(ms), unit: 'ms' },
    { case: label, metric: 'recovery CPU time', value: Math.round(cpuMs), unit: 'ms' },
  ]
}

/** Events produced at a steady rate into Kafka while a correlator consumes: append → stored. */
async function kafkaLag(quick: boolean, dir: string): Promise<BenchResult[]> {
  const prefix = `bench${randomBytes(3).toString('hex')}.`
  const names = topicNames(prefix)
  const group = `${prefix}group`
  try {
    await createFunnelTopics(BROKERS, prefix)
  } catch {
    process.stderr.write(`bench correlator: no Kafka at ${BROKERS.join(',')}; lag not measured\n`)
    return []
  }
  const logs = funnelLogs(quick ? 20_000 : 80_000, 2)
  const storage = await DuckDbStorage.open(join(dir, 'lag.duckdb'))
  const lags: number[] = []
  const source = new KafkaSource({
    brokers: BROKERS,
    clientId: 'bench',
    groupId: group,
    topics: inputTopics(true, names),
    names,
  })
  const rekey = new KafkaRekeyProducer(BROKERS, 'bench')
  const c = new Correlator(
    {
      rules: DEFAULT_RULES,
      storage,
      source,
      producer: rekey,
      names,
      checkpointMs: 5000,
      idleMs: 3_600_000,
      writeEveryRecords: 20_000,
      lingerMs: 100,
      onBatch: (s) => {
        if (!Number.isNaN(s.lagMs)) lags.push(s.lagMs)
      },
    },
    await source.partitions(),
  )
  void c.start()
  const producer = funnelProducer(BROKERS)
  // Interleave the partitions' logs into one stream and send it in 50 ms slices at `rate`.
  const all = [...logs.values()].flat().sort((a, b) => Number(a.offset) - Number(b.offset))
  const rate = 20_000
  const slice = rate / 20
  const t0 = performance.now()
  for (let i = 0; i < all.length; i += slice) {
    await produceRecords(producer, all.slice(i, i + slice), prefix, slice)
    const due = t0 + ((i + slice) / rate) * 1000
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  }
  await new Promise((r) => setTimeout(r, 3000))
  await producer.close()
  await c.stop()
  await rekey.close()
  await storage.close()
  await dropBenchTopics(BROKERS, prefix, [group])
  const sorted = lags.sort((a, b) => a - b)
  const p = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
  const label = `Kafka → correlator (re-keyed through Kafka) → DuckDB, ${all.length} events at ${rate}/s`
  return [
    { case: label, metric: 'lag p50', value: Math.round(p(0.5)), unit: 'ms' },
    { case: label, metric: 'lag p99', value: Math.round(p(0.99)), unit: 'ms' },
  ]
}

/** The cases, by the name BENCH_CORRELATOR_CASES picks them with (comma separated; default all). */
const CASES = {
  throughput: throughputCases,
  state: (quick: boolean) => stateBytes(quick),
  recovery,
  lag: kafkaLag,
  streams: correlatorVsStreams,
} satisfies Record<string, (quick: boolean, dir: string) => Promise<BenchResult[]>>

export async function run(options: RunOptions): Promise<BenchResult[]> {
  const names = process.env.BENCH_CORRELATOR_CASES?.split(',') ?? Object.keys(CASES)
  const unknown = names.filter((n) => !(n in CASES))
  if (unknown.length > 0)
    throw new Error(
      `BENCH_CORRELATOR_CASES: unknown ${unknown.join(', ')} (have ${Object.keys(CASES).join(', ')})`,
    )
  const dir = mkdtempSync(join(tmpdir(), 'adgate-bench-correlator-'))
  try {
    const out: BenchResult[] = []
    // Each case is a part of the results file: running some cases keeps the others' figures.
    for (const name of names)
      for (const r of await CASES[name as keyof typeof CASES](options.quick, dir))
        out.push({ ...r, part: name })
    return out
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
