// What scripts/kafka.mjs (one node) and scripts/kafka-cluster.mjs (three secured nodes) share:
// the jars and classpath, the broker log config, storage format, launching and stopping one KRaft
// JVM, and a probe that asks Kafka itself (ApiVersions) whether it answers.
// Only node: built-ins are used so the scripts run before `npm ci`.

import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import { answerUsage } from './usage.mjs'

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const host = '127.0.0.1'
const libsDir = path.join(repoRoot, 'ops/kafka/target/libs')
export const START_TIMEOUT_MS = 180_000 // JVMs start slowly on a busy 2-core machine
const STOP_TIMEOUT_MS = 30_000

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// Throws so that `finally` blocks (the start lock) still run; runCommand() prints it and exits 1.
export function fail(message) {
  throw new Error(message)
}

// ---------------------------------------------------------------------------
// Probe: a real Kafka ApiVersions v0 round trip, so "port open" means "Kafka answers".
// Kafka answers ApiVersions before SASL authentication, so the same probe works on a SASL_SSL listener.

function apiVersionsRequest(correlationId) {
  const clientId = Buffer.from('adgate-kafka-script')
  // header v1: api_key int16, api_version int16, correlation_id int32, client_id string; v0 body is empty
  const body = Buffer.alloc(10 + clientId.length)
  body.writeInt16BE(18, 0) // ApiVersions
  body.writeInt16BE(0, 2)
  body.writeInt32BE(correlationId, 4)
  body.writeInt16BE(clientId.length, 8)
  clientId.copy(body, 10)
  const size = Buffer.alloc(4)
  size.writeInt32BE(body.length, 0)
  return Buffer.concat([size, body])
}

/**
 * Resolves true if a Kafka broker on `port` answers ApiVersions with error_code 0 within timeoutMs.
 * With `caFile` the connection is TLS, verified against that CA (and 127.0.0.1 against the certificate).
 */
export function kafkaAnswers(port, { caFile, timeoutMs = 2000 } = {}) {
  return new Promise((resolve) => {
    const correlationId = Math.floor(Math.random() * 0x7fffffff)
    const ready = caFile ? 'secureConnect' : 'connect'
    let socket
    try {
      socket = caFile ? tls.connect({ host, port, ca: fs.readFileSync(caFile) }) : net.connect({ host, port })
    } catch {
      resolve(false) // no CA file yet
      return
    }
    let received = Buffer.alloc(0)
    const finish = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => finish(false))
    socket.on('error', () => finish(false))
    socket.on(ready, () => socket.write(apiVersionsRequest(correlationId)))
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk])
      // response: size int32, correlation_id int32, error_code int16, ...
      if (received.length < 10) return
      finish(received.readInt32BE(4) === correlationId && received.readInt16BE(8) === 0)
    })
  })
}

/** True when something accepts TCP connections on the port (a Kafka of ours or not, or anything else). */
export function portTaken(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.setTimeout(1000, () => {
      socket.destroy()
      resolve(false)
    })
    socket.on('error', () => resolve(false))
    socket.on('connect', () => {
      socket.destroy()
      resolve(true)
    })
  })
}

// ---------------------------------------------------------------------------
// Process helpers

function readPid(pidFile) {
  try {
    const pid = Number(fs.readFileSync(pidFile, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

/** `marker`: a string of the process's command line (the JVM's main class or jar). */
export function isAlive(pid, marker = 'kafka.Kafka') {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return err.code === 'EPERM'
  }
  // Guard against pid reuse after a reboot: on Linux check that it is really our process.
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker)
  } catch {
    return true // no /proc (not Linux): trust kill(0)
  }
}

/** Pid of the broker recorded in pidFile if it still runs, or null (removing a stale pid file). */
export function livePid(pidFile, marker) {
  const pid = readPid(pidFile)
  if (pid !== null && isAlive(pid, marker)) return pid
  fs.rmSync(pidFile, { force: true })
  return null
}

export function commandExists(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' })
  return !r.error
}

export function requireJava() {
  if (!commandExists('java', ['-version']))
    fail('java not found on PATH (apt-get install openjdk-17-jre-headless)')
}

/** The log's ERROR/FATAL lines (stack traces push them out of a plain tail) and its last lines. */
export function logSummary(file, lines = 30) {
  let text
  try {
    text = fs.readFileSync(file, 'utf8').trimEnd().split('\n')
  } catch {
    return '(no log)'
  }
  const errors = text.filter((l) => /^\[[^\]]+\] (ERROR|FATAL) /.test(l)).slice(0, 10)
  const errorPart = errors.length ? `errors:\n${errors.join('\n')}\n... last lines:\n` : ''
  return errorPart + text.slice(-lines).join('\n')
}

// ---------------------------------------------------------------------------
// Jars, config, storage

export function ensureJars() {
  const present = fs.existsSync(libsDir) && fs.readdirSync(libsDir).some((f) => f.endsWith('.jar'))
  if (present) return
  console.log('kafka: fetching broker jars with Maven (first run only)...')
  const r = spawnSync(
    'mvn',
    ['-q', '-B', '-f', path.join(repoRoot, 'ops/kafka/pom.xml'), 'dependency:copy-dependencies'],
    { stdio: 'inherit' },
  )
  if (r.error) fail('mvn not found on PATH; install Maven (apt-get install maven)')
  if (r.status !== 0) fail(`mvn exited with ${r.status}`)
}

/**
 * Explicit classpath instead of 'libs/*'. Kafka's published poms pin slf4j-api 1.7, which
 * cannot see the log4j2 slf4j2 binding (everything would go to the NOP logger). If a 2.x
 * slf4j-api is also present, drop the 1.x one so the binding order is not left to chance.
 */
function classpath() {
  let jars = fs.readdirSync(libsDir).filter((f) => f.endsWith('.jar'))
  if (jars.some((f) => /^slf4j-api-2\./.test(f))) {
    jars = jars.filter((f) => !/^slf4j-api-1\./.test(f))
  }
  return jars.map((f) => path.join(libsDir, f)).join(path.delimiter)
}

// Broker stdout goes to its log file. INFO for lifecycle lines; chatty subsystems at WARN.
function log4jProperties() {
  const quiet = [
    'kafka.log',
    'kafka.cluster',
    'kafka.coordinator',
    'kafka.server.metadata',
    'kafka.server.ReplicaFetcherManager',
    'kafka.server.ReplicaAlterLogDirsManager',
    'kafka.request.logger',
    'state.change.logger',
    'org.apache.kafka',
  ]
  const loggers = quiet.map((name, i) => `logger.q${i}.name=${name}\nlogger.q${i}.level=WARN\n`).join('')
  return `status=warn
appender.out.type=Console
appender.out.name=STDOUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=STDOUT
${loggers}`
}

/**
 * One KRaft node's files under `dir`: server.properties, log4j2.properties, logs/, broker.log, broker.pid.
 * `writeConfig(properties)` writes both config files (on every start: edit the script, not the file).
 */
export function nodeFiles(dir) {
  const files = {
    dir,
    logDirs: path.join(dir, 'logs'),
    serverProps: path.join(dir, 'server.properties'),
    log4j: path.join(dir, 'log4j2.properties'),
    brokerLog: path.join(dir, 'broker.log'),
    pidFile: path.join(dir, 'broker.pid'),
  }
  return files
}

export function writeNodeConfig(files, properties) {
  fs.mkdirSync(files.logDirs, { recursive: true })
  fs.writeFileSync(
    files.serverProps,
    `# Written by scripts/ on every start; edit the script, not this file.\n${properties}`,
  )
  fs.writeFileSync(files.log4j, log4jProperties())
}

export function isFormatted(files) {
  return fs.existsSync(path.join(files.logDirs, 'meta.properties'))
}

/**
 * Kafka Uuid: 22-char base64url. One starting with '-' reads as an option to the storage tool's
 * argument parser (a 1-in-64 flake), so draw again, as Kafka's own Uuid.randomUuid() does.
 */
export function newClusterId() {
  let clusterId
  do clusterId = randomBytes(16).toString('base64url')
  while (clusterId.startsWith('-'))
  return clusterId
}

function javaLogArgs(files) {
  return [`-Dlog4j2.configurationFile=${files.log4j}`, `-Dkafka.logs.dir=${files.dir}`]
}

/**
 * Runs a Kafka tool class (storage format, ACLs) on the broker classpath; rejects with its output on
 * failure. Asynchronous so that several tools (one per node) start their JVMs side by side; C1 only
 * and the serial GC because these JVMs live for seconds.
 */
export function runTool(files, mainClass, args) {
  const jvm = ['-Xmx192m', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', ...javaLogArgs(files)]
  const child = spawn('java', [...jvm, '-cp', classpath(), mainClass, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk) => {
    output += chunk
  })
  child.stderr.on('data', (chunk) => {
    output += chunk
  })
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolve(output)
      else reject(new Error(`${mainClass} failed:\n${output}`))
    })
  })
}

/** Formats the node's storage (static quorum: Kafka 4.1 rejects --standalone with controller.quorum.voters). */
export function formatStorage(files, clusterId, extraArgs = []) {
  return runTool(files, 'kafka.tools.StorageTool', [
    'format',
    '-t',
    clusterId,
    '-c',
    files.serverProps,
    ...extraArgs,
  ])
}

/** Starts the node's JVM detached (it outlives this script), records its pid, returns the pid. */
export function launchNode(files, heapArgs) {
  if (fs.existsSync(files.brokerLog)) fs.renameSync(files.brokerLog, `${files.brokerLog}.1`)
  const out = fs.openSync(files.brokerLog, 'a')
  const child = spawn(
    'java',
    [
      ...heapArgs,
      '-Djava.awt.headless=true',
      ...javaLogArgs(files),
      '-cp',
      classpath(),
      'kafka.Kafka',
      files.serverProps,
    ],
    { cwd: files.dir, detached: true, stdio: ['ignore', out, out] },
  )
  child.unref()
  fs.closeSync(out)
  fs.writeFileSync(files.pidFile, `${child.pid}\n`)
  return child.pid
}

/** Polls until answers() is true, or until keepWaiting() says it never will / timeout (false). */
export async function waitUntil(answers, keepWaiting, started = Date.now()) {
  while (Date.now() - started < START_TIMEOUT_MS) {
    if (await answers()) return true
    if (!keepWaiting()) return false
    await sleep(250)
  }
  return false
}

/** SIGTERM (controlled shutdown), SIGKILL after timeoutMs; removes the pid file. */
export async function stopNode(files, label, timeoutMs = STOP_TIMEOUT_MS) {
  const pid = livePid(files.pidFile, files.marker)
  if (pid === null) return false
  process.kill(pid, 'SIGCONT') // a node a fault test left SIGSTOPped would never act on SIGTERM
  process.kill(pid, 'SIGTERM')
  const deadline = Date.now() + timeoutMs
  while (isAlive(pid, files.marker) && Date.now() < deadline) await sleep(200)
  if (isAlive(pid, files.marker)) {
    console.warn(`${label}: pid ${pid} ignored SIGTERM for ${timeoutMs / 1000} s, sending SIGKILL`)
    process.kill(pid, 'SIGKILL')
  }
  fs.rmSync(files.pidFile, { force: true })
  console.log(`${label}: stopped pid ${pid}`)
  return true
}

/** Dispatches `node <script> <command>`; an error prints as `<label>: message` with exit code 1. */
export async function runCommand(label, commands) {
  answerUsage(Object.keys(commands))
  try {
    await commands[process.argv[2]](...process.argv.slice(3))
  } catch (err) {
    console.error(`${label}: ${err.message}`)
    process.exitCode = 1
  }
}
