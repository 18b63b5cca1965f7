import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { kafkaScriptOrThrow } from './broker.js'
import { REPO_ROOT } from './results.js'
import type { Server } from './servers.js'

/**
 * The peers of the peers bench (bench/peers.ts), each built from its registry (Maven Central or
 * the Go module proxy) from the small configs and launchers under bench/peers/, and started on a
 * fixed port of the bench's range against the bench's own broker. Builds are cached in
 * bench/peers/<peer>/target (and ~/.m2, ~/go); a peer that cannot be built carries the reason.
 */
export const PEERS_DIR = join(REPO_ROOT, 'bench', 'peers')
const LOGS = join(REPO_ROOT, 'data', 'bench-peers')

/**
 * The benches' fixed ports: BENCH_PORT_BASE (default 20800) plus 10/20/30/40 for the peers and 100
 * (and 101, its controller) for the broker, so two checkouts on one machine can bench side by side.
 */
const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 20_800)
export const PEER_PORTS = {
  adgate: PORT_BASE + 10,
  camel: PORT_BASE + 20,
  benthos: PORT_BASE + 30,
  otel: PORT_BASE + 40,
} as const
const BROKER_PORT = PORT_BASE + 100
export const BENCH_BROKERS = `127.0.0.1:${BROKER_PORT}`
const KAFKA_DATA = join(REPO_ROOT, 'data', 'bench-peers-kafka')

/**
 * The benches' own broker (scripts/kafka.mjs on BENCH_PORT_BASE + 100), so its CPU is attributable
 * to a run. Its log goes when it stops: a cost run writes ~4 GB, and four of them filled the shared
 * disk (the next start formats a fresh one in seconds).
 */
export async function benchBroker(command: 'start' | 'stop'): Promise<void> {
  await kafkaScriptOrThrow(command, { port: BROKER_PORT, dataDir: KAFKA_DATA })
  if (command === 'stop') rmSync(KAFKA_DATA, { recursive: true, force: true })
}

export function brokerPid(): number {
  return Number(readFileSync(join(KAFKA_DATA, 'kafka', 'broker.pid'), 'utf8').trim())
}

export type Built = { ok: true; run: string[] } | { ok: false; reason: string }

function firstError(r: { stdout: string; stderr: string; status: number | null }): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes from Maven
  const text = `${r.stdout}${r.stderr}`.replace(/\u001b\[[0-9;]*m/g, '')
  const line = text.split('\n').find((l) => /error|cannot|not found|refused/i.test(l))
  return (line ?? `exited ${r.status}`).trim().slice(0, 300)
}

function nice(
  cmd: string,
  args: string[],
  cwd: string,
): { stdout: string; stderr: string; status: number | null } {
  return spawnSync('nice', ['-n', '10', cmd, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20 })
}

/** A Go peer: `go build` of bench/peers/<dir> (go.mod and go.sum committed) into its target/. */
export function buildGo(dir: string, binary: string): Built {
  const cwd = join(PEERS_DIR, dir)
  const out = join(cwd, 'target', binary)
  if (!existsSync(out)) {
    const r = nice('go', ['build', '-o', out, '.'], cwd)
    if (r.status !== 0) return { ok: false, reason: `go build: ${firstError(r)}` }
  }
  return { ok: true, run: [out] }
}

/** Camel: the launcher compiled and its dependencies copied by Maven into target/. */
export function buildCamel(): Built {
  const cwd = join(PEERS_DIR, 'camel')
  const jar = join(cwd, 'target', 'camel-peer-0.jar')
  if (!existsSync(jar) || !existsSync(join(cwd, 'target', 'dependency'))) {
    const r = nice(
      'mvn',
      ['-q', '-B', 'package', 'dependency:copy-dependencies', '-DincludeScope=runtime'],
      cwd,
    )
    if (r.status !== 0) return { ok: false, reason: `mvn: ${firstError(r)}` }
  }
  return { ok: true, run: ['java', '-cp', `${jar}:${join(cwd, 'target', 'dependency')}/*`] }
}

/** Wait until something accepts connections on 127.0.0.1:port. */
async function listening(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before listening`)
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (up) return
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`not listening on ${port} within ${timeoutMs / 1000} s`)
}

/** Start a peer process (its output in data/bench-peers/<name>.log) and wait for its port. */
export async function startPeer(
  name: string,
  command: string[],
  env: Record<string, string>,
  port: number,
): Promise<Server> {
  mkdirSync(LOGS, { recursive: true })
  const log = openSync(join(LOGS, `${name.replace(/\W+/g, '-')}.log`), 'w')
  const child = spawn(command[0]!, command.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', log, log],
  })
  try {
    await listening(port, child, 180_000)
  } catch (err) {
    child.kill('SIGKILL')
    const tail = readFileSync(join(LOGS, `${name.replace(/\W+/g, '-')}.log`), 'utf8').slice(-600)
    throw new Error(`${(err as Error).message}: ${tail}`)
  }
  return { port, child }
}
