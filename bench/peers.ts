import { loadavg } from 'node:os'
import { join } from 'node:path'
import { Consumer } from '@platformatic/kafka'
import { CONTENT_TYPE } from '../generator/encode.js'
import type { RunOptions } from './lib/module.js'
import { type OpenLoopResult, openLoop } from './lib/open-loop.js'
import {
  BENCH_BROKERS as BROKERS,
  type Built,
  benchBroker,
  brokerPid,
  buildCamel,
  buildGo,
  PEERS_DIR,
  PEER_PORTS as PORTS,
  startPeer,
} from './lib/peer-servers.js'
import type { BenchResult } from './lib/results.js'
import { REPO_ROOT } from './lib/results.js'
import { bodies, cpuSeconds, load, peakRssMb, type Server, startGateway, stop } from './lib/servers.js'
import { median } from './lib/stats.js'

export const description =
  'peers on one private broker, interleaved: adgate vs Apache Camel 4.22, Benthos 4.27, OpenTelemetry Collector 0.165 (saturation, CPU-s per million events of server and broker, open-loop p50/p99/p99.9, peak RSS)'

/**
 * Every peer takes the same generated impressions, 100 per request, and answers only when they are
 * durable in Kafka (acks=all, idempotent, LZ4), all on one private broker (scripts/kafka.mjs on
 * BENCH_PORT_BASE + 100, default 20900; data under data/bench-peers-kafka) so its CPU is attributable to the run. All peers
 * run side by side and are measured one at a time in rotating order, round after round, so the
 * machine's noise lands on all of them alike; figures are medians over rounds.
 *
 * - saturation: autocannon, closed loop, 64 connections (throughput only; see bench/lib/open-loop.ts
 *   for why no latency from it);
 * - fixed rates of 25/50/75 % of the slowest peer's saturation, and 50 % of adgate's own: the
 *   open-loop generator (latency from the intended send time), with the server's and the
 *   broker's CPU seconds over the run from /proc, per million events answered 2xx.
 */
const EVENTS = 100

interface Peer {
  name: string
  /** What the client sends: the same JSON array, or the same events as OTLP log records. */
  contract: 'JSON array' | 'OTLP/JSON logs'
  path: string
  contentType: string
  bodies: Buffer[]
  start(): Promise<Server>
}

interface Running extends Peer {
  server: Server
}

/** The same events as OTLP/JSON logs: one log record per event, its body the event's JSON bytes. */
function otlpLogs(body: Buffer): Buffer {
  const events = JSON.parse(body.toString()) as unknown[]
  const now = `${Date.now()}000000`
  return Buffer.from(
    JSON.stringify({
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'adserver' } }] },
          scopeLogs: [
            {
              scope: { name: 'adgate.bench' },
              logRecords: events.map((e) => ({
                timeUnixNano: now,
                body: { bytesValue: Buffer.from(JSON.stringify(e)).toString('base64') },
              })),
            },
          ],
        },
      ],
    }),
  )
}

function peers(json: Buffer[], only?: string[]): (Peer | { name: string; reason: string })[] {
  const skip = { ok: false, reason: 'not selected' } as const
  const wanted = (name: string) => !only || only.includes(name)
  const built = (name: string, b: () => Built, make: (run: string[]) => Peer) => {
    const r = wanted(name) ? b() : skip
    return r.ok ? make(r.run) : { name, reason: r.reason }
  }
  const camelDir = join(PEERS_DIR, 'camel')
  // What adgate, camel and benthos are sent: the same JSON arrays on the same route.
  const jsonArray = {
    contract: 'JSON array',
    path: '/v1/impressions',
    contentType: CONTENT_TYPE.json,
    bodies: json,
  } as const
  return [
    {
      name: 'adgate',
      ...jsonArray,
      start: () =>
        startGateway({
          KAFKA_BROKERS: BROKERS,
          PORT: String(PORTS.adgate),
          ADGATE_DATA_DIR: join(REPO_ROOT, 'data', 'bench-peers-adgate'),
        }),
    },
    built('camel', buildCamel, (run) => ({
      name: 'camel',
      ...jsonArray,
      start: () =>
        startPeer(
          'camel',
          [
            run[0]!,
            `-Dcamel.main.routesIncludePattern=file:${join(camelDir, 'route.yaml')}`,
            '-Dpeer.topic=peers.camel',
            `-Dpeer.brokers=${BROKERS}`,
            ...run.slice(1),
            'adgate.bench.CamelPeer',
          ],
          { PORT: String(PORTS.camel) },
          PORTS.camel,
        ),
    })),
    built(
      'benthos',
      () => buildGo('benthos', 'benthos'),
      (run) => ({
        name: 'benthos',
        ...jsonArray,
        start: () =>
          startPeer(
            'benthos',
            [...run, '-c', join(PEERS_DIR, 'benthos', 'config.yaml')],
            {
              PORT: String(PORTS.benthos),
              ADMIN_PORT: String(PORTS.benthos + 1),
              BROKERS,
              TOPIC: 'peers.benthos',
            },
            PORTS.benthos,
          ),
      }),
    ),
    built(
      'otel collector',
      () => buildGo('otelcol', 'otelcol'),
      (run) => ({
        name: 'otel collector',
        contract: 'OTLP/JSON logs',
        path: '/v1/logs',
        contentType: 'application/json',
        bodies: json.map(otlpLogs),
        start: () =>
          startPeer(
            'otel collector',
            [...run, '--config', join(PEERS_DIR, 'otelcol', 'config.yaml')],
            { PORT: String(PORTS.otel), BROKERS, TOPIC: 'peers.otel' },
            PORTS.otel,
          ),
      }),
    ),
  ]
}

/** Records in a topic (sum of the partitions' end offsets): what a peer really made durable. */
async function records(topic: string): Promise<number> {
  const consumer = new Consumer({
    clientId: 'bench-peers',
    groupId: 'bench-peers',
    bootstrapBrokers: [BROKERS],
  })
  try {
    const offsets = await consumer.listOffsets({ topics: [topic] })
    return (offsets.get(topic) ?? []).reduce((a, o) => a + Number(o), 0)
  } catch {
    return 0
  } finally {
    await consumer.close()
  }
}

const TOPIC: Record<string, string> = {
  adgate: 'adgate.impressions',
  camel: 'peers.camel',
  benthos: 'peers.benthos',
  'otel collector': 'peers.otel',
}

interface Sample {
  eventsPerS: number
  cpuPerM: number
  brokerPerM: number
  open?: OpenLoopResult
}

/** The machine's 1-minute load average after each measurement: how shared the box was. */
const loads: number[] = []

/** Run `work` against a peer and charge the server's and the broker's CPU to the events it got 2xx for. */
async function charged(
  peer: Running,
  work: () => Promise<{ events: number; seconds: number; open?: OpenLoopResult }>,
): Promise<Sample> {
  const pid = peer.server.child.pid!
  const c0 = cpuSeconds(pid)
  const b0 = cpuSeconds(brokerPid())
  const { events, seconds, open } = await work()
  const cpu = cpuSeconds(pid) - c0
  const broker = cpuSeconds(brokerPid()) - b0
  loads.push(loadavg()[0]!)
  return {
    eventsPerS: events / seconds,
    cpuPerM: events > 0 ? (cpu / events) * 1e6 : Number.NaN,
    brokerPerM: events > 0 ? (broker / events) * 1e6 : Number.NaN,
    open,
  }
}

function saturation(peer: Running, seconds: number): Promise<Sample> {
  return charged(peer, async () => {
    const r = await load({
      url: `http://127.0.0.1:${peer.server.port}${peer.path}`,
      contentType: peer.contentType,
      bodies: peer.bodies,
      eventsPerRequest: EVENTS,
      seconds,
      connections: 64,
    })
    if (r.errors + r.non2xx > 0)
      process.stderr.write(`peers: ${peer.name}: ${r.errors} errors, ${r.non2xx} non-2xx at saturation\n`)
    return { events: r.eventsPerSec * seconds, seconds }
  })
}

function fixedRate(peer: Running, eventsPerS: number, seconds: number): Promise<Sample> {
  return charged(peer, async () => {
    const open = await openLoop({
      url: `http://127.0.0.1:${peer.server.port}`,
      requests: peer.bodies.map((body) => ({
        path: peer.path,
        headers: { 'content-type': peer.contentType },
        body,
      })),
      rate: eventsPerS / EVENTS,
      seconds,
      maxConnections: 512,
    })
    return { events: open.requests['2xx'] * EVENTS, seconds, open }
  })
}

/** Each round visits every peer once, starting one further along, so no peer always goes first. */
async function rounds<T>(
  list: Running[],
  n: number,
  fn: (p: Running) => Promise<T>,
): Promise<Map<string, T[]>> {
  const out = new Map<string, T[]>(list.map((p) => [p.name, []]))
  for (let r = 0; r < n; r++)
    for (let i = 0; i < list.length; i++) {
      const p = list[(i + r) % list.length]!
      out.get(p.name)!.push(await fn(p))
    }
  return out
}

const r3 = (x: number) => Math.round(x * 1000) / 1000

export async function run(options: RunOptions): Promise<BenchResult[]> {
  const seconds = options.quick ? 3 : 8
  const n = options.quick ? 1 : 3
  const results: BenchResult[] = []
  loads.length = 0
  await benchBroker('start')
  const running: Running[] = []
  try {
    const json = bodies('impression', 'json', 50, EVENTS)
    // BENCH_PEERS=adgate,camel runs a subset (the rest are not built either).
    const only = process.env.BENCH_PEERS?.split(',')
    for (const p of peers(json, only)) {
      if ('reason' in p && p.reason === 'not selected') continue
      if ('reason' in p) {
        process.stderr.write(`peers: ${p.name} not built: ${p.reason}\n`)
        results.push({
          case: `${p.name}: not built (${p.reason})`,
          metric: 'available',
          value: 0,
          unit: 'bool',
        })
        continue
      }
      try {
        running.push({ ...p, server: await p.start() })
      } catch (err) {
        const why = (err as Error).message.split('\n')[0]!
        process.stderr.write(`peers: ${p.name} did not start: ${why}\n`)
        results.push({
          case: `${p.name}: did not start (${why})`,
          metric: 'available',
          value: 0,
          unit: 'bool',
        })
      }
    }
    const before = new Map<string, number>()
    for (const p of running) before.set(p.name, await records(TOPIC[p.name]!))

    // Warm-up (JIT, connection pools, topic metadata), then saturation rounds.
    await rounds(running, 1, (p) => saturation(p, 2))
    const sat = await rounds(running, n, (p) => saturation(p, seconds))
    const max = new Map(running.map((p) => [p.name, median(sat.get(p.name)!.map((s) => s.eventsPerS))]))
    for (const p of running) {
      const s = sat.get(p.name)!
      const c = `${p.name} (${p.contract}): saturation, closed loop, 64 connections`
      results.push({ case: c, metric: 'events_per_s', value: Math.round(max.get(p.name)!), unit: 'events/s' })
      results.push({
        case: c,
        metric: 'cpu_s_per_M',
        value: r3(median(s.map((x) => x.cpuPerM))),
        unit: 'CPU-s',
      })
      results.push({
        case: c,
        metric: 'broker_cpu_s_per_M',
        value: r3(median(s.map((x) => x.brokerPerM))),
        unit: 'CPU-s',
      })
    }

    // Fixed rates: shares of the slowest peer's saturation, every peer at the same offered load.
    const slowest = Math.min(...max.values())
    const fixed = new Map<number, Map<string, Sample[]>>()
    for (const share of [0.25, 0.5, 0.75]) {
      const rate = Math.max(EVENTS, Math.round((slowest * share) / EVENTS) * EVENTS)
      const got = await rounds(running, options.quick ? 1 : 2, (p) => fixedRate(p, rate, seconds))
      fixed.set(share, got)
      for (const p of running)
        pushFixed(results, p, `${share * 100}% of the slowest peer's max`, rate, got.get(p.name)!)
    }
    // adgate at half its own maximum: the latency target's operating point.
    const ours = running.find((p) => p.name === 'adgate')
    if (ours) {
      const rate = Math.round(max.get('adgate')! / 2 / EVENTS) * EVENTS
      const got = await rounds([ours], options.quick ? 1 : 2, (p) => fixedRate(p, rate, seconds))
      pushFixed(results, ours, "50% of adgate's own max", rate, got.get('adgate')!)
    }

    for (const p of running) {
      results.push({
        case: `${p.name}: process`,
        metric: 'peak_rss',
        value: r3(peakRssMb(p.server.child.pid!)),
        unit: 'MB',
      })
      const durable = (await records(TOPIC[p.name]!)) - before.get(p.name)!
      results.push({
        case: `${p.name}: records written to Kafka during the run`,
        metric: 'records',
        value: durable,
        unit: 'records',
      })
    }
    results.push(...ratios(running, max, fixed.get(0.5)!))
    results.push({
      case: `machine: load average (1 min), median of ${loads.length} measurements`,
      metric: 'load_average',
      value: r3(median(loads)),
      unit: 'runnable threads',
    })
  } finally {
    for (const p of running) await stop(p.server)
    await benchBroker('stop').catch(() => {})
  }
  return results
}

function pushFixed(results: BenchResult[], p: Running, what: string, rate: number, s: Sample[]): void {
  const c = `${p.name} (${p.contract}): ${rate} events/s offered, open loop (${what})`
  const m = (f: (x: Sample) => number) => r3(median(s.map(f)))
  const open = s.map((x) => x.open!)
  results.push({
    case: c,
    metric: 'events_per_s',
    value: Math.round(m((x) => x.eventsPerS)),
    unit: 'events/s',
  })
  results.push({ case: c, metric: 'cpu_s_per_M', value: m((x) => x.cpuPerM), unit: 'CPU-s' })
  results.push({ case: c, metric: 'broker_cpu_s_per_M', value: m((x) => x.brokerPerM), unit: 'CPU-s' })
  results.push({
    case: c,
    metric: 'p50_ms',
    value: r3(median(open.map((o) => o.latency_ms.p50))),
    unit: 'ms',
  })
  results.push({
    case: c,
    metric: 'p99_ms',
    value: r3(median(open.map((o) => o.latency_ms.p99))),
    unit: 'ms',
  })
  results.push({
    case: c,
    metric: 'p999_ms',
    value: r3(median(open.map((o) => o.latency_ms.p999))),
    unit: 'ms',
  })
  results.push({
    case: c,
    metric: 'schedule_kept',
    value: open.filter((o) => o.schedule.kept).length / open.length,
    unit: 'share of rounds',
  })
  for (const o of open)
    if (!o.schedule.kept)
      process.stderr.write(`peers: ${p.name} at ${rate}/s: schedule not kept (${o.schedule.why})\n`)
}

/**
 * adgate ÷ each peer: saturation events/s, and CPU, broker CPU and p99 at 50 % of the slowest
 * peer's maximum. The best peer is the one with the least server CPU per million events there.
 */
function ratios(running: Running[], max: Map<string, number>, half: Map<string, Sample[]>): BenchResult[] {
  const out: BenchResult[] = []
  const ours = half.get('adgate')
  if (!ours) return out
  const figures = (s: Sample[]) => ({
    cpu: median(s.map((x) => x.cpuPerM)),
    broker: median(s.map((x) => x.brokerPerM)),
    p99: median(s.map((x) => x.open!.latency_ms.p99)),
  })
  const a = figures(ours)
  const others = running.filter((p) => p.name !== 'adgate')
  const row = (c: string, metric: string, unit: string, value: number, baseline: number): BenchResult => ({
    case: c,
    metric,
    value: r3(value),
    unit,
    baseline: r3(baseline),
    ratio: r3(value / baseline),
  })
  let best: { name: string; cpu: number } | undefined
  for (const p of others) {
    const f = figures(half.get(p.name)!)
    if (!best || f.cpu < best.cpu) best = { name: p.name, cpu: f.cpu }
    const c = `adgate ÷ ${p.name}`
    out.push(row(`${c}: saturation`, 'events_per_s', 'events/s', max.get('adgate')!, max.get(p.name)!))
    out.push(row(`${c}: at 50% of the slowest max`, 'cpu_s_per_M', 'CPU-s', a.cpu, f.cpu))
    out.push(row(`${c}: at 50% of the slowest max`, 'broker_cpu_s_per_M', 'CPU-s', a.broker, f.broker))
    out.push(row(`${c}: at 50% of the slowest max`, 'p99', 'ms', a.p99, f.p99))
  }
  if (best) {
    const f = figures(half.get(best.name)!)
    const c = `adgate ÷ best peer (${best.name})`
    out.push(row(`${c}: saturation`, 'events_per_s', 'events/s', max.get('adgate')!, max.get(best.name)!))
    out.push(row(`${c}: at 50% of the slowest max`, 'cpu_s_per_M', 'CPU-s', a.cpu, f.cpu))
    out.push(row(`${c}: at 50% of the slowest max`, 'broker_cpu_s_per_M', 'CPU-s', a.broker, f.broker))
    out.push(row(`${c}: at 50% of the slowest max`, 'p99', 'ms', a.p99, f.p99))
  }
  return out
}
