// A second, private single-node Kafka for destructive tests (stopping the broker mid-load), so
// the shared broker on 9092 that every other test uses is never touched. It is the same
// scripts/kafka.mjs broker, on another port and with its own data dir (log dir, pid file, log):
//   data/outage-broker/<port>/kafka/{logs,broker.log,broker.pid}
// Ports are taken from SECOND_BROKER_BASE_PORT (default 19092) upwards in steps of 100 (the
// controller listens on port+1). A port is owned through <tmpdir>/adgate-second-broker/<port>.owner
// (our pid), one directory for the whole machine, so test runs at once, from this checkout or
// another, each get their own broker; a claim left by a dead run is taken over and its broker stopped.
// Measured here: the first start (formats storage) 3.5–6 s, a stop 0.5–1.2 s, a restart 2.5–11 s.
// freeze()/thaw() SIGSTOP/SIGCONT the JVM: a broker that hangs instead of going away.
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { kafkaScript } from '../../bench/lib/broker.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const baseDir = path.join(repoRoot, 'data', 'outage-broker')
const claimsDir = path.join(os.tmpdir(), 'adgate-second-broker')
const FIRST_PORT = Number(process.env.SECOND_BROKER_BASE_PORT ?? 19092)
const PORT_STEP = 100
const PORT_TRIES = 10

export interface SecondBroker {
  readonly port: number
  /** bootstrap list for KAFKA_BROKERS and the clients */
  readonly brokers: string[]
  /** ADGATE_DATA_DIR given to scripts/kafka.mjs; the broker lives in <dataDir>/kafka */
  readonly dataDir: string
  /** Start (or restart on the same data dir) and wait until Kafka answers; resolves with the ms it took. */
  start(): Promise<number>
  /** SIGTERM the broker and wait until the JVM is gone; resolves with the ms it took. */
  stop(): Promise<number>
  /** SIGSTOP the broker JVM: connections stay open and nothing answers (a hung broker, a long GC pause). */
  freeze(): void
  /** SIGCONT after freeze(). */
  thaw(): void
  /** Stop the broker and give up the port. Safe to call more than once. */
  release(): Promise<void>
}

/** Claims a free port pair and its data dir. The broker is not started: call start(). */
export async function acquireSecondBroker(): Promise<SecondBroker> {
  fs.mkdirSync(baseDir, { recursive: true })
  fs.mkdirSync(claimsDir, { recursive: true })
  for (let i = 0; i < PORT_TRIES; i++) {
    const port = FIRST_PORT + i * PORT_STEP
    const owner = path.join(claimsDir, `${port}.owner`)
    const dataDir = path.join(baseDir, String(port))
    if (!claim(owner)) continue
    // A run of this checkout that died may have left its broker running on this dir: stop it (no-op
    // otherwise). Another checkout's broker left on the port makes the port taken: the next one is tried.
    const stale = await runScript('stop', port, dataDir)
    if (stale.code !== 0 || !((await portFree(port)) && (await portFree(port + 1)))) {
      fs.rmSync(owner, { force: true }) // taken by something that is not ours
      continue
    }
    return makeBroker(port, dataDir, owner)
  }
  throw new Error(`no free port pair for a second Kafka broker from ${FIRST_PORT} (step ${PORT_STEP})`)
}

function makeBroker(port: number, dataDir: string, owner: string): SecondBroker {
  let released = false
  const timed = async (command: 'start' | 'stop'): Promise<number> => {
    const started = Date.now()
    const r = await runScript(command, port, dataDir)
    if (r.code !== 0) throw new Error(`kafka.mjs ${command} on ${port} failed (${r.code}):\n${r.output}`)
    return Date.now() - started
  }
  const brokerPid = () => Number(fs.readFileSync(path.join(dataDir, 'kafka', 'broker.pid'), 'utf8').trim())
  const signal = (sig: NodeJS.Signals) => process.kill(brokerPid(), sig)
  return {
    port,
    brokers: [`127.0.0.1:${port}`],
    dataDir,
    start: () => timed('start'),
    stop: () => timed('stop'),
    freeze: () => {
      const pid = brokerPid()
      process.kill(pid, 'SIGSTOP')
      // kill() only queues the signal: return once the kernel reports every JVM thread stopped.
      const deadline = Date.now() + 2000
      while (!threadsStopped(pid)) {
        if (Date.now() > deadline) throw new Error(`broker pid ${pid} did not stop on SIGSTOP`)
      }
    },
    thaw: () => signal('SIGCONT'),
    release: async () => {
      if (released) return
      released = true
      try {
        try {
          signal('SIGCONT') // a frozen JVM would sit on SIGTERM until the script's SIGKILL
        } catch {
          // not running
        }
        await timed('stop')
      } finally {
        fs.rmSync(owner, { force: true })
      }
    },
  }
}

/** Asynchronous on purpose: the caller keeps its own load running while the broker stops or starts. */
function runScript(command: 'start' | 'stop', port: number, dataDir: string) {
  return kafkaScript(command, { port, dataDir })
}

/** Exclusive ownership of a port through a pid file; a file left by a dead process is taken over. */
function claim(ownerFile: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(ownerFile, `${process.pid}\n`, { flag: 'wx' })
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    if (pidAlive(Number(fs.readFileSync(ownerFile, 'utf8').trim()))) return false
    fs.rmSync(ownerFile, { force: true })
  }
  return false
}

/** True when every thread of pid is stopped (state T in /proc); true where there is no /proc. */
function threadsStopped(pid: number): boolean {
  let tasks: string[]
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    return true
  }
  return tasks.every((tid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      return stat[stat.lastIndexOf(')') + 2] === 'T'
    } catch {
      return true // the thread is gone
    }
  })
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}
