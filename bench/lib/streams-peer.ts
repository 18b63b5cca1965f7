import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { count, funnelLogs } from './correlator-workload.js'
import { createFunnelTopics, dropBenchTopics, funnelProducer, produceRecords } from './funnel-kafka.js'
import { type BenchResult, REPO_ROOT } from './results.js'
import { BROKERS, cpuSeconds, ensureKafka, peakRssMb } from './servers.js'
import { median } from './stats.js'

/**
 * The correlator against a Kafka Streams application doing the same joins (bench/peers/kafka-streams),
 * on the same broker and the same input topics: one generated funnel is produced once to fresh
 * topics under a random prefix, then each peer reads it from offset 0 in its own process (its own
 * consumer group / application id, its own re-keyed or repartition topics), one at a time, in
 * rounds with the order alternated. Timed per run, by this process, from the peer's FIRST line
 * (first input record handed to its processing code: JVM start-up, Kafka Streams' rebalance and
 * DuckDB opening excluded, JIT warm-up included for both) to its DONE line (every input record
 * processed and its effects committed, the peer stopped cleanly). CPU is the peer process's
 * user+system over all its threads (/proc/<pid>/stat) over the same span; the broker's CPU over it
 * is reported apart; peak RSS is VmHWM at DONE.
 *
 * adgate: `adgate correlator`'s settings (DuckDB, re-keyed through Kafka, a write per 20k records
 * or 200 ms, state checkpoints every 5 s), exactly-once into storage. Kafka Streams: its defaults
 * (one stream thread, RocksDB stores, default JVM), once with exactly_once_v2 (the fair match)
 * and once with at_least_once.
 *
 * BENCH_BASELINE_DIR (a built checkout of earlier code) adds its correlator as one more peer, in
 * the same rounds: a change's A/B. BENCH_STREAMS_GUARANTEES picks the Streams runs (comma
 * separated, default `exactly_once_v2,at_least_once`; empty: none); BENCH_CORRELATOR_ROUNDS the
 * rounds (default 3).
 */

/** Case names, shared with bench/report.ts. */
export const STREAMS_WORKLOAD = 'join workload'
export const OURS = 'adgate correlator'
const BASELINE = 'adgate correlator (BENCH_BASELINE_DIR)'

const DIR = join(REPO_ROOT, 'bench', 'peers', 'kafka-streams')
const CLASS = join(DIR, 'target', 'classes', 'adgate', 'bench', 'StreamsJoin.class')
const SOURCE = join(DIR, 'src', 'main', 'java', 'adgate', 'bench', 'StreamsJoin.java')
const DEPS = join(DIR, 'target', 'dependency')
const CHILD = join(REPO_ROOT, 'dist', 'bench', 'lib', 'correlator-peer-child.js')

/** Compile the Streams app with Maven when its classes are missing or older than its source. */
export function buildStreamsPeer(): { classpath: string } | { reason: string } {
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' })
  if (java.error || java.status !== 0) return { reason: 'no java on PATH' }
  const fresh =
    existsSync(CLASS) &&
    existsSync(join(DEPS, 'kafka-streams-4.1.1.jar')) &&
    statSync(CLASS).mtimeMs >= statSync(SOURCE).mtimeMs
  if (!fresh) {
    const r = spawnSync(
      'mvn',
      ['-q', '-B', '-f', join(DIR, 'pom.xml'), 'compile', 'dependency:copy-dependencies'],
      { encoding: 'utf8' },
    )
    if (r.error) return { reason: `no mvn on PATH (${r.error.message})` }
    if (r.status !== 0) {
      const why =
        `${r.stdout}${r.stderr}`.split('\n').find((l) => l.includes('ERROR')) ?? `mvn exited ${r.status}`
      return { reason: why.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '').trim() }
    }
  }
  return { classpath: `${join(DIR, 'target', 'classes')}:${DEPS}/*` }
}

/**
 * The broker JVM's pid, to report its CPU apart: BENCH_BROKER_PID, else the pid file scripts/kafka.mjs
 * writes in this checkout (a broker started from another checkout has its pid file there).
 */
function brokerPid(): number | undefined {
  try {
    const pid = Number(
      process.env.BENCH_BROKER_PID ??
        readFileSync(join(REPO_ROOT, 'data', 'kafka', 'broker.pid'), 'utf8').trim(),
    )
    cpuSeconds(pid)
    return pid
  } catch {
    return undefined
  }
}

interface Run {
  /** Input records per second, FIRST → DONE. */
  eventsPerS: number
  /** Peer CPU-seconds per million input records, FIRST → DONE. */
  cpuPerM: number
  /** Peer CPU-seconds per million input records over its whole life (start-up included). */
  cpuPerMWhole: number
  /** Input records per second from spawn to DONE. */
  eventsPerSWhole: number
  brokerCpuPerM: number
  peakRssMb: number
  done: Record<string, number | string>
}

/** Spawn a peer, time it from its FIRST line to its DONE line, read its CPU and RSS, let it exit. */
async function measure(command: string, args: string[], records: number, broker?: number): Promise<Run> {
  const t0 = performance.now()
  const child: ChildProcess = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-8000)
  })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  // A peer that stalls is killed (and reported as such), never waited for forever.
  // Generous: on a shared box at load ≈ 25 one run of 640k records took over 320 s (the old limit).
  const limitS = Math.max(600, records / 500)
  const timer = setTimeout(() => {
    err += `\n(killed: no DONE after ${limitS} s)`
    child.kill('SIGKILL')
  }, limitS * 1000)
  let t1 = 0
  let cpu1 = 0
  let b1 = 0
  let buf = ''
  for await (const chunk of child.stdout!) {
    buf += chunk.toString()
    let i = buf.indexOf('\n')
    while (i >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      i = buf.indexOf('\n')
      if (line === 'FIRST') {
        t1 = performance.now()
        cpu1 = cpuSeconds(child.pid!)
        b1 = broker ? cpuSeconds(broker) : 0
      } else if (line.startsWith('DONE ')) {
        const t2 = performance.now()
        const cpu2 = cpuSeconds(child.pid!)
        const b2 = broker ? cpuSeconds(broker) : Number.NaN
        const rss = peakRssMb(child.pid!)
        clearTimeout(timer)
        child.stdin!.end()
        await exited
        const s = (t2 - t1) / 1000
        return {
          eventsPerS: records / s,
          cpuPerM: ((cpu2 - cpu1) / records) * 1e6,
          cpuPerMWhole: (cpu2 / records) * 1e6,
          eventsPerSWhole: records / ((t2 - t0) / 1000),
          brokerCpuPerM: ((b2 - b1) / records) * 1e6,
          peakRssMb: rss,
          done: JSON.parse(line.slice(5)) as Record<string, number | string>,
        }
      }
    }
  }
  const code = await exited
  clearTimeout(timer)
  throw new Error(`${command} exited (${code}) before DONE:\n${err}`)
}

/** Produce the funnel to `<prefix>adgate.*` (4 partitions, the generator's keys and partitions). */
async function produce(prefix: string, bids: number) {
  const logs = funnelLogs(bids, 7)
  const brokers = BROKERS.split(',')
  await createFunnelTopics(brokers, prefix)
  const producer = funnelProducer(brokers)
  try {
    for (const log of logs.values()) await produceRecords(producer, log, prefix, 5000)
  } finally {
    await producer.close()
  }
  return count(logs)
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

export async function correlatorVsStreams(quick: boolean, dir: string): Promise<BenchResult[]> {
  const bids = quick ? 30_000 : 500_000
  const rounds = quick ? 1 : Number(process.env.BENCH_CORRELATOR_ROUNDS ?? 3)
  const guarantees = (process.env.BENCH_STREAMS_GUARANTEES ?? 'exactly_once_v2,at_least_once')
    .split(',')
    .filter((g) => g !== '')
  const baselineDir = process.env.BENCH_BASELINE_DIR
  let baselineChild =
    baselineDir === undefined
      ? undefined
      : join(baselineDir, 'dist', 'bench', 'lib', 'correlator-peer-child.js')
  // One BENCH_BASELINE_DIR serves every bench of a run: a checkout without this child is skipped.
  if (baselineChild !== undefined && !existsSync(baselineChild)) {
    process.stderr.write(`bench correlator: no ${baselineChild}: the baseline correlator is not run\n`)
    baselineChild = undefined
  }
  const build = guarantees.length > 0 ? buildStreamsPeer() : { classpath: '' }
  if ('reason' in build) {
    process.stderr.write(`bench correlator: the Kafka Streams peer cannot run here: ${build.reason}\n`)
    return [
      { case: `kafka streams peer: not run (${build.reason})`, metric: 'available', value: 0, unit: 'bool' },
    ]
  }
  try {
    ensureKafka()
  } catch (err) {
    return [
      {
        case: `correlator vs kafka streams: not run (${(err as Error).message})`,
        metric: 'available',
        value: 0,
        unit: 'bool',
      },
    ]
  }
  const prefix = `benchks${randomBytes(3).toString('hex')}.`
  const groups: string[] = []
  const broker = brokerPid()
  try {
    const records = await produce(prefix, bids)
    // Each command gets a dump file (attributed conversion ids) in the first round.
    type Command = (run: string, dump?: string) => [string, string[]]
    const adgate =
      (child: string): Command =>
      (run, dump) => {
        groups.push(`${prefix}${run}`)
        const args = [child, BROKERS, prefix, run, join(dir, `${run}.duckdb`)]
        return [process.execPath, dump === undefined ? args : [...args, dump]]
      }
    const peers: [string, Command][] = [
      [OURS, adgate(CHILD)],
      ...(baselineChild === undefined ? [] : [[BASELINE, adgate(baselineChild)] as [string, Command]]),
      ...guarantees.map((g): [string, Command] => [
        `kafka streams (${g})`,
        (run, dump) => {
          const app = `${prefix}${run}`
          groups.push(app)
          const state = join(dir, run)
          mkdirSync(state, { recursive: true })
          return [
            'java',
            [
              ...(dump === undefined ? [] : [`-Dadgate.dump=${dump}`]),
              '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
              '-cp',
              build.classpath,
              'adgate.bench.StreamsJoin',
              BROKERS,
              prefix,
              app,
              join(REPO_ROOT, 'schemas'),
              String(records),
              g,
              state,
              `${app}.campaign-minute`,
            ],
          ]
        },
      ]),
    ]
    const runs = new Map<string, Run[]>()
    const dumps = new Map<string, string>()
    const failures: BenchResult[] = []
    for (let r = 0; r < rounds; r++) {
      // Alternate the order, so drift on the shared machine does not favour one peer.
      const order = r % 2 === 0 ? peers : [...peers].reverse()
      for (const [name, command] of order) {
        const run = `r${r}-${randomBytes(2).toString('hex')}`
        const dump = r === 0 ? join(dir, `${run}.conversions.txt`) : undefined
        if (dump !== undefined) dumps.set(name, dump)
        const [cmd, args] = command(run, dump)
        process.stderr.write(`bench correlator: ${name}, round ${r + 1}/${rounds}, ${records} records\n`)
        let m: Run
        try {
          m = await measure(cmd, args, records, broker)
        } catch (err) {
          const why = (err as Error).message
          process.stderr.write(`  failed: ${why}\n`)
          failures.push({
            case: `${name}: ${STREAMS_WORKLOAD}, round ${r + 1} did not finish (${why.split('\n')[0]})`,
            metric: 'finished',
            value: 0,
            unit: 'bool',
          })
          continue
        }
        process.stderr.write(
          `  ${Math.round(m.eventsPerS)} events/s, ${m.cpuPerM.toFixed(2)} CPU-s/M, ${Math.round(m.peakRssMb)} MB; ${JSON.stringify(m.done)}\n`,
        )
        runs.set(name, [...(runs.get(name) ?? []), m])
      }
    }
    return [...summarise(runs, records, bids, rounds), ...conversionDiff(dumps), ...failures]
  } finally {
    await dropBenchTopics(BROKERS.split(','), prefix, groups)
    for (const g of groups) rmSync(join(dir, g.slice(prefix.length)), { recursive: true, force: true })
  }
}

/**
 * adgate's attributed conversions against each peer's, by event id (first round): how many only
 * one side has, and how many the peer output more than once. The differing ids go to stderr.
 */
function conversionDiff(dumps: Map<string, string>): BenchResult[] {
  const read = (name: string) => {
    const file = dumps.get(name)
    if (file === undefined || !existsSync(file)) return null
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('conversion '))
      .map((l) => l.split(' ')[1]!)
  }
  const ours = read(OURS)
  if (ours === null) return []
  const mine = new Set(ours)
  const out: BenchResult[] = []
  for (const name of dumps.keys()) {
    const theirs = name === OURS ? null : read(name)
    if (theirs === null) continue
    const set = new Set(theirs)
    const onlyOurs = [...mine].filter((id) => !set.has(id))
    const onlyTheirs = [...set].filter((id) => !mine.has(id))
    const repeated = theirs.length - set.size
    const c = `${OURS} vs ${name}: ${STREAMS_WORKLOAD}, attributed conversions by event id`
    out.push(
      { case: c, metric: 'only_adgate', value: onlyOurs.length, unit: 'count' },
      { case: c, metric: 'only_peer', value: onlyTheirs.length, unit: 'count' },
      { case: c, metric: 'peer_repeated', value: repeated, unit: 'count' },
    )
    if (onlyOurs.length + onlyTheirs.length + repeated > 0)
      process.stderr.write(
        `bench correlator: conversions differ from ${name}: only adgate ${onlyOurs.join(' ')}; only peer ${onlyTheirs.join(' ')}; peer repeated ${repeated}\n`,
      )
  }
  return out
}

function summarise(runs: Map<string, Run[]>, records: number, bids: number, rounds: number): BenchResult[] {
  const med = (name: string, f: (r: Run) => number) => median(runs.get(name)!.map(f))
  const w = STREAMS_WORKLOAD
  const out: BenchResult[] = [
    {
      case: `${w}: input records (${bids} bids, dups, disorder; medians of ${rounds} rounds)`,
      metric: 'records',
      value: records,
      unit: 'records',
    },
  ]
  for (const name of runs.keys()) {
    const c = `${name}: ${w}, first record → all committed`
    out.push({
      case: c,
      metric: 'events_per_s',
      value: Math.round(med(name, (r) => r.eventsPerS)),
      unit: 'events/s',
    })
    out.push({ case: c, metric: 'cpu_s_per_M', value: round(med(name, (r) => r.cpuPerM)), unit: 'CPU-s' })
    out.push({ case: c, metric: 'peak_rss', value: round(med(name, (r) => r.peakRssMb)), unit: 'MB' })
    const whole = `${name}: ${w}, whole process (start-up included)`
    out.push({
      case: whole,
      metric: 'events_per_s',
      value: Math.round(med(name, (r) => r.eventsPerSWhole)),
      unit: 'events/s',
    })
    out.push({
      case: whole,
      metric: 'cpu_s_per_M',
      value: round(med(name, (r) => r.cpuPerMWhole)),
      unit: 'CPU-s',
    })
    out.push({
      case: `${name}: ${w}, broker during the run`,
      metric: 'cpu_s_per_M',
      value: round(med(name, (r) => r.brokerCpuPerM)),
      unit: 'CPU-s',
    })
    // What the joins found (first round), a check that both did the same work.
    const d = runs.get(name)![0]!.done
    for (const [metric, key] of [
      ['wins', 'wins'],
      ['clicks_valid', 'clicks_valid'],
      ['conversions', name === OURS ? 'conversions' : 'conversions_joined'],
    ] as const)
      if (typeof d[key] === 'number')
        out.push({ case: `${name}: ${w}, join outputs`, metric, value: d[key], unit: 'count' })
  }
  if (!runs.has(OURS)) return out
  for (const theirs of [...runs.keys()].filter((n) => n !== OURS)) {
    const c = `${OURS} / ${theirs}: ${w}`
    const pair = (metric: string, unit: string, f: (r: Run) => number) => {
      const a = med(OURS, f)
      const b = med(theirs, f)
      out.push({ case: c, metric, value: round(a), unit, baseline: round(b), ratio: round(a / b) })
    }
    pair('events_per_s', 'events/s', (r) => r.eventsPerS)
    pair('cpu_s_per_M', 'CPU-s', (r) => r.cpuPerM)
    pair('peak_rss', 'MB', (r) => r.peakRssMb)
  }
  return out
}
