import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import autocannon from 'autocannon'
import type { Encoding } from '../../decoders/result.js'
import type { EventType } from '../../events/catalog.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { kafkaScriptSync } from './broker.js'
import { REPO_ROOT } from './results.js'

/**
 * Pieces shared by the end-to-end benches (bench/gateway.ts, bench/peers.ts) and the load tests
 * (loadtest/): start a server process and learn its port, stop it, read its CPU and memory from
 * /proc and its metrics from /metrics, build request bodies from the event generator, drive
 * autocannon.
 */
// The broker ensureKafka() starts (scripts/kafka.mjs reads KAFKA_PORT too), unless KAFKA_BROKERS names others.
export const BROKERS = process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? 9092}`
export const GATEWAY_PORT_LINE = /"port":(\d+)[^\n]*gateway listening/

export interface Server {
  port: number
  child: ChildProcess
}

/** Make sure the shared local broker (127.0.0.1:9092) runs; starts it if not. */
export function ensureKafka(): void {
  if (!kafkaScriptSync('start')) throw new Error('the local Kafka broker did not start')
}

/** Start a server process and wait for the line that gives its port. */
export function startServer(
  args: string[],
  env: Record<string, string>,
  portLine: RegExp,
  command: string = process.execPath,
): Promise<Server> {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    const onData = (d: Buffer) => {
      out += d.toString()
      if (out.length > 1 << 20) out = out.slice(-(1 << 16))
      const m = portLine.exec(out)
      if (m) {
        child.stdout!.off('data', onData)
        child.stdout!.resume() // keep draining its log so it never blocks on a full pipe
        resolve({ port: Number(m[1]), child })
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${out}`)))
  })
}

export interface GatewayStart {
  /** Node's own flags, before the script: a profiler's (--cpu-prof, perf's). */
  nodeArgs?: readonly string[]
  /** false: resolve once it listens, for probes of the start-up itself. */
  awaitWarmUp?: boolean
}

/**
 * Start adgate's gateway on a free port, built in the checkout at `root` (this one, or a baseline's
 * for old-vs-new runs); resolves once its start-up warm-up is over (/readyz no longer says
 * `warming`; a build without one at once), so no measurement is charged for it.
 */
export async function startGateway(
  env: Record<string, string> = {},
  root = REPO_ROOT,
  { nodeArgs = [], awaitWarmUp = true }: GatewayStart = {},
): Promise<Server> {
  const server = await startServer(
    [...nodeArgs, join(root, 'dist', 'cli', 'main.js'), 'gateway'],
    { KAFKA_BROKERS: BROKERS, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    GATEWAY_PORT_LINE,
  )
  if (awaitWarmUp) await untilReadyz(`http://127.0.0.1:${server.port}`, (_, body) => body.warming !== true)
  return server
}

/** Polls `url`/readyz until `done` holds for an answer; resolves with how long that took (ms). */
export async function untilReadyz(
  url: string,
  done: (status: number, body: { warming?: boolean }) => boolean,
  timeoutMs = 120_000,
): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) }).catch(() => null)
    const body = res ? ((await res.json().catch(() => ({}))) as { warming?: boolean }) : null
    if (res && body && done(res.status, body)) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`${url}/readyz: not as awaited within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export function stop(server: Server, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) return resolve()
    const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs)
    server.child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    server.child.kill('SIGTERM')
  })
}

/** Peak resident set size of a process, from /proc (VmHWM). */
export function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

/** Current resident set size of a process, from /proc (VmRSS). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : Number.NaN
}

const CLOCK_TICKS = 100 // USER_HZ on Linux

/** CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime 15.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS
}

/** Distinct generated bodies, so nothing downstream sees the same bytes over and over. */
export function bodies(type: EventType, encoding: Encoding, count: number, eventsPerBody: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    encodeEvents(type, generateEvents(type, eventsPerBody, 1000 + i), encoding),
  )
}

export interface Load {
  url: string
  contentType: string
  bodies: Buffer[]
  eventsPerRequest: number
  seconds: number
  connections: number
  headers?: Record<string, string>
}

export interface LoadResult {
  eventsPerSec: number
  /** Requests per second that got any answer. */
  requestsPerSec: number
  p50: number
  p99: number
  p999: number
  non2xx: number
  errors: number
  raw: autocannon.Result
}

/**
 * Closed loop, as fast as each connection is answered: throughput only. autocannon's rate options
 * send per-second bursts, so latency figures come from bench/lib/open-loop.ts instead.
 */
export async function load(l: Load): Promise<LoadResult> {
  const result = await autocannon({
    url: l.url,
    method: 'POST',
    connections: l.connections,
    duration: l.seconds,
    headers: { 'content-type': l.contentType, ...l.headers },
    requests: l.bodies.map((body) => ({ method: 'POST', body })),
  })
  return summarise(result, l.eventsPerRequest, l.seconds)
}

export function summarise(result: autocannon.Result, eventsPerRequest: number, seconds: number): LoadResult {
  return {
    eventsPerSec: (result['2xx'] / seconds) * eventsPerRequest,
    requestsPerSec: result.requests.total / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    p999: result.latency.p99_9 ?? result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    raw: result,
  }
}

/**
 * Wait (up to `timeoutMs`) until adgate's spool is empty: a batch Kafka was slow to take (a fresh
 * broker creating its topics) sends every later one through the spool until it drains, and a
 * measurement started then would be the spool's (SQLite, fsync), not the Kafka path's.
 */
export async function spoolDrained(url: string, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await metric(url, 'adgate_spool_events', 0)) === 0) return true
    await new Promise((r) => setTimeout(r, 250))
  }
  return false
}

/**
 * The value of a metric from /metrics: `name` alone sums every series, `name{labels}` picks one.
 * A series not created yet (a counter never incremented) is `absent` when given, else an error.
 */
export async function metric(url: string, name: string, absent?: number): Promise<number> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  let sum = 0
  let found = false
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1))
      found = true
    }
  }
  if (!found && absent !== undefined) return absent
  if (!found) throw new Error(`no metric ${name} in /metrics`)
  return sum
}
