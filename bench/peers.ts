import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CONTENT_TYPE } from '../generator/encode.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, REPO_ROOT } from './lib/results.js'
import {
  BROKERS,
  bodies,
  cpuSeconds,
  ensureKafka,
  type Load,
  load,
  median,
  peakRssMb,
  type Server,
  startGateway,
  startServer,
  stop,
} from './lib/servers.js'

export const description =
  'peers, same workload and broker, acks=all: adgate (1 and 2 workers) vs Strimzi Kafka Bridge vs the naive node:http + kafkajs baseline'

const EVENTS = 100
const STRIMZI_DIR = join(REPO_ROOT, 'bench', 'peers', 'strimzi')
/** Fixed offered loads for the latency comparison, events/s (open loop). */
const RATES = [5_000, 20_000, 50_000]

interface Peer {
  name: string
  server: Server
  url: string
  contentType: string
  bodies: Buffer[]
}

/** The broker JVM's pid (scripts/kafka.mjs writes it), to charge its CPU too. */
function brokerPid(): number | undefined {
  try {
    return Number(readFileSync(join(REPO_ROOT, 'data', 'kafka', 'broker.pid'), 'utf8').trim())
  } catch {
    return undefined
  }
}

/**
 * Fetch the Strimzi Kafka Bridge with Maven (bench/peers/strimzi/pom.xml). Returns the classpath
 * directory, or why it cannot run here.
 */
function fetchStrimzi(): { dir: string } | { reason: string } {
  const dir = join(STRIMZI_DIR, 'target', 'dependency')
  if (existsSync(dir) && readdirSync(dir).some((f) => f.startsWith('kafka-bridge'))) return { dir }
  const r = spawnSync(
    'mvn',
    ['-q', '-B', '-f', join(STRIMZI_DIR, 'pom.xml'), 'dependency:copy-dependencies'],
    {
      encoding: 'utf8',
    },
  )
  if (r.status === 0) return { dir }
  const why =
    `${r.stdout}${r.stderr}`.split('\n').find((l) => l.includes('ERROR')) ?? `mvn exited ${r.status}`
  return { reason: why.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '').trim() }
}

/** Start the bridge: HTTP on a fixed local port, producer batching + LZ4, acks=all. */
async function startStrimzi(dir: string): Promise<Server> {
  const port = 18_480
  const config = join(STRIMZI_DIR, 'target', 'application.properties')
  mkdirSync(join(STRIMZI_DIR, 'target'), { recursive: true })
  writeFileSync(
    config,
    [
      'bridge.id=adgate-bench',
      `kafka.bootstrap.servers=${BROKERS}`,
      'kafka.producer.acks=all',
      'kafka.producer.linger.ms=5',
      'kafka.producer.batch.size=262144',
      'kafka.producer.compression.type=lz4',
      'http.host=127.0.0.1',
      `http.port=${port}`,
      '',
    ].join('\n'),
  )
  const server = await startServer(
    ['-cp', `${dir}/*`, 'io.strimzi.kafka.bridge.Application', `--config-file=${config}`],
    {},
    /(listening on port (\d+))|(HTTP[- ]Kafka Bridge started)/,
    'java',
  )
  return { ...server, port }
}

export async function run(options: RunOptions): Promise<BenchResult[]> {
  ensureKafka()
  const seconds = options.quick ? 3 : 8
  const impressions = bodies('impression', 'json', 50, EVENTS)
  const naive = join(REPO_ROOT, 'dist', 'bench', 'peers', 'naive-gateway.js')
  const results: BenchResult[] = []
  const broker = brokerPid()

  const strimzi = fetchStrimzi()
  if ('reason' in strimzi) {
    process.stderr.write(`peers: Strimzi Kafka Bridge cannot run here: ${strimzi.reason}\n`)
    results.push({
      case: `strimzi kafka bridge: not run (${strimzi.reason})`,
      metric: 'available',
      value: 0,
      unit: 'bool',
    })
  }

  const peers: Peer[] = []
  const starters: [string, () => Promise<Peer>][] = [
    [
      'adgate 1 worker',
      async () => {
        const server = await startGateway({ ADGATE_WORKERS: '1' })
        return adgatePeer('adgate 1 worker', server, impressions)
      },
    ],
    [
      'adgate 2 workers',
      async () => {
        const server = await startGateway({ ADGATE_WORKERS: '2' })
        return adgatePeer('adgate 2 workers', server, impressions)
      },
    ],
    [
      'naive node:http + kafkajs',
      async () => {
        const server = await startServer([naive, '0', BROKERS], {}, /listening (\d+)/)
        return {
          name: 'naive node:http + kafkajs',
          server,
          url: `http://127.0.0.1:${server.port}/v1/impressions`,
          contentType: CONTENT_TYPE.json,
          bodies: impressions,
        }
      },
    ],
  ]
  if ('dir' in strimzi) {
    // The bridge's own envelope around the same generated events (it does not validate them).
    const wrapped = impressions.map((b) =>
      Buffer.from(
        JSON.stringify({
          records: (JSON.parse(b.toString()) as { auction_id?: string }[]).map((e) => ({
            key: e.auction_id ?? null,
            value: e,
          })),
        }),
      ),
    )
    starters.push([
      'strimzi kafka bridge',
      async () => {
        const server = await startStrimzi(strimzi.dir)
        return {
          name: 'strimzi kafka bridge',
          server,
          url: `http://127.0.0.1:${server.port}/topics/adgate.impressions`,
          contentType: 'application/vnd.kafka.json.v2+json',
          bodies: wrapped,
        }
      },
    ])
  }

  // One peer at a time on the machine, so none competes with another for the 2 cores.
  const maxOf = new Map<string, number>()
  for (const [name, start] of starters) {
    let peer: Peer
    try {
      peer = await start()
    } catch (err) {
      results.push({
        case: `${name}: did not start (${(err as Error).message.split('\n')[0]})`,
        metric: 'available',
        value: 0,
        unit: 'bool',
      })
      continue
    }
    peers.push(peer)
    try {
      const base: Omit<Load, 'seconds' | 'connections'> = {
        url: peer.url,
        contentType: peer.contentType,
        bodies: peer.bodies,
        eventsPerRequest: EVENTS,
      }
      await load({ ...base, seconds: 2, connections: 16 }) // warm-up
      // Saturation: closed loop, 64 connections; CPU of the server and of the broker over the run.
      const maxima: number[] = []
      let cpuPerM = 0
      let brokerPerM = 0
      for (let i = 0; i < (options.quick ? 1 : 2); i++) {
        const c0 = cpuSeconds(peer.server.child.pid!)
        const b0 = broker ? cpuSeconds(broker) : 0
        const r = await load({ ...base, seconds, connections: 64 })
        const events = r.eventsPerSec * seconds
        cpuPerM = ((cpuSeconds(peer.server.child.pid!) - c0) / events) * 1e6
        brokerPerM = broker ? ((cpuSeconds(broker) - b0) / events) * 1e6 : Number.NaN
        maxima.push(r.eventsPerSec)
        if (r.errors > 0)
          process.stderr.write(`peers: ${name}: ${r.errors} errors, ${r.non2xx} non-2xx at saturation\n`)
      }
      const max = median(maxima)
      maxOf.set(name, max)
      results.push({
        case: `${name}: saturation (closed loop, 64 conns)`,
        metric: 'events_per_s',
        value: Math.round(max),
        unit: 'events/s',
      })
      results.push({
        case: `${name}: server CPU per million events`,
        metric: 'cpu_s_per_M',
        value: round(cpuPerM),
        unit: 'CPU-s',
      })
      results.push({
        case: `${name}: broker CPU per million events`,
        metric: 'cpu_s_per_M',
        value: round(brokerPerM),
        unit: 'CPU-s',
      })
      // Latency at fixed offered loads (open loop), up to 90% of its own maximum, plus 50% of it.
      const rates = [...RATES.filter((x) => x <= max * 0.9), Math.round(max / 2 / 1000) * 1000]
      for (const eventsPerS of [...new Set(rates)].sort((a, b) => a - b)) {
        const rate = Math.max(1, Math.round(eventsPerS / EVENTS))
        const r = await load({ ...base, seconds, connections: 32, rate })
        const achieved = (r.requestsPerSec / rate) * 100
        const c = `${name}: ${eventsPerS} events/s offered (open loop, achieved ${achieved.toFixed(0)}%)`
        results.push({ case: c, metric: 'p50', value: r.p50, unit: 'ms' })
        results.push({ case: c, metric: 'p99', value: r.p99, unit: 'ms' })
        results.push({ case: c, metric: 'p99.9', value: r.p999, unit: 'ms' })
      }
      results.push({
        case: `${name}: process`,
        metric: 'peak_rss',
        value: round(peakRssMb(peer.server.child.pid!)),
        unit: 'MB',
      })
    } finally {
      await stop(peer.server)
    }
  }
  const ours = maxOf.get('adgate 1 worker')
  for (const other of ['naive node:http + kafkajs', 'strimzi kafka bridge']) {
    const theirs = maxOf.get(other)
    if (ours && theirs)
      results.push({
        case: `adgate 1 worker vs ${other}: saturation`,
        metric: 'events_per_s',
        value: Math.round(ours),
        unit: 'events/s',
        baseline: Math.round(theirs),
        ratio: round(ours / theirs),
      })
  }
  return results
}

function adgatePeer(name: string, server: Server, impressions: Buffer[]): Peer {
  return {
    name,
    server,
    url: `http://127.0.0.1:${server.port}/v1/impressions`,
    contentType: CONTENT_TYPE.json,
    bodies: impressions,
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
