#!/usr/bin/env node
// Runs one local Apache Kafka node (KRaft, broker+controller in one JVM) on 127.0.0.1.
//
//   node scripts/kafka.mjs start|stop|status
//
// Environment:
//   KAFKA_PORT       client port (default 9092); the controller listens on KAFKA_PORT+1
//   ADGATE_DATA_DIR  data root (default ./data); relative paths are taken from the repo root.
//                    The broker lives in <data>/kafka: server.properties, logs/, broker.log, broker.pid
//
// The jars come from Maven Central via ops/kafka/pom.xml (Kafka is not on npm or apt).
// Only node: built-ins are used so this runs before `npm ci`.

import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const host = '127.0.0.1'
const port = Number(process.env.KAFKA_PORT ?? 9092)
const controllerPort = port + 1
const libsDir = path.join(repoRoot, 'ops/kafka/target/libs')
const dataDir = path.resolve(repoRoot, process.env.ADGATE_DATA_DIR ?? 'data', 'kafka')
const paths = {
  logDirs: path.join(dataDir, 'logs'),
  serverProps: path.join(dataDir, 'server.properties'),
  log4j: path.join(dataDir, 'log4j2.properties'),
  brokerLog: path.join(dataDir, 'broker.log'),
  pidFile: path.join(dataDir, 'broker.pid'),
  startLock: path.join(dataDir, 'start.lock'),
}
const START_TIMEOUT_MS = 90_000
const STOP_TIMEOUT_MS = 30_000

// ---------------------------------------------------------------------------
// Probe: a real Kafka ApiVersions v0 round trip, so "port open" means "Kafka answers".

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

/** Resolves true if a Kafka broker answers ApiVersions with error_code 0 within timeoutMs. */
function kafkaAnswers(timeoutMs = 2000) {
  return new Promise((resolve) => {
    const correlationId = Math.floor(Math.random() * 0x7fffffff)
    const socket = net.connect({ host, port })
    let received = Buffer.alloc(0)
    const finish = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => finish(false))
    socket.on('error', () => finish(false))
    socket.on('connect', () => socket.write(apiVersionsRequest(correlationId)))
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk])
      // response: size int32, correlation_id int32, error_code int16, ...
      if (received.length < 10) return
      finish(received.readInt32BE(4) === correlationId && received.readInt16BE(8) === 0)
    })
  })
}

// ---------------------------------------------------------------------------
// Process helpers

function readPid() {
  try {
    const pid = Number(fs.readFileSync(paths.pidFile, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return err.code === 'EPERM'
  }
  // Guard against pid reuse after a reboot: on Linux check that it is really our broker.
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kafka.Kafka')
  } catch {
    return true // no /proc (not Linux): trust kill(0)
  }
}

/** Pid of the broker this script started, or null (removing a stale pid file). */
function livePid() {
  const pid = readPid()
  if (pid !== null && isAlive(pid)) return pid
  fs.rmSync(paths.pidFile, { force: true })
  return null
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function commandExists(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' })
  return !r.error
}

/** The log's ERROR/FATAL lines (stack traces push them out of a plain tail) and its last lines. */
function logSummary(file, lines = 30) {
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

// Throws so that `finally` blocks (the start lock) still run; main() prints it and exits 1.
function fail(message) {
  throw new Error(message)
}

// ---------------------------------------------------------------------------
// Setup: jars, config, storage

function ensureJars() {
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

function serverProperties() {
  return `# Written by scripts/kafka.mjs on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${host}:${controllerPort}
listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}
advertised.listeners=PLAINTEXT://${host}:${port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=${paths.logDirs}
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`
}

// Broker stdout goes to broker.log. INFO for lifecycle lines; chatty subsystems at WARN.
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

function writeConfig() {
  fs.mkdirSync(paths.logDirs, { recursive: true })
  fs.writeFileSync(paths.serverProps, serverProperties())
  fs.writeFileSync(paths.log4j, log4jProperties())
}

function formatStorageOnce() {
  if (fs.existsSync(path.join(paths.logDirs, 'meta.properties'))) return
  // Static quorum (controller.quorum.voters): Kafka 4.1 rejects --standalone in that case.
  // Kafka Uuid: 22-char base64url. One starting with '-' reads as an option to the tool's argument
  // parser (a 1-in-64 flake), so draw again, as Kafka's own Uuid.randomUuid() does.
  let clusterId
  do clusterId = randomBytes(16).toString('base64url')
  while (clusterId.startsWith('-'))
  const r = spawnSync(
    'java',
    [...javaLogArgs(), '-cp', classpath(), 'kafka.tools.StorageTool', 'format'].concat([
      '-t',
      clusterId,
      '-c',
      paths.serverProps,
    ]),
    { encoding: 'utf8' },
  )
  if (r.status !== 0) fail(`storage format failed:\n${r.stdout}${r.stderr}`)
  console.log(`kafka: formatted ${paths.logDirs} (cluster id ${clusterId})`)
}

function javaLogArgs() {
  return [`-Dlog4j2.configurationFile=${paths.log4j}`, `-Dkafka.logs.dir=${dataDir}`]
}

// ---------------------------------------------------------------------------
// Commands

function launchBroker() {
  if (fs.existsSync(paths.brokerLog)) fs.renameSync(paths.brokerLog, `${paths.brokerLog}.1`)
  const out = fs.openSync(paths.brokerLog, 'a')
  const child = spawn(
    'java',
    [
      '-Xms256m',
      '-Xmx512m',
      '-Djava.awt.headless=true',
      ...javaLogArgs(),
      '-cp',
      classpath(),
      'kafka.Kafka',
      paths.serverProps,
    ],
    { cwd: dataDir, detached: true, stdio: ['ignore', out, out] },
  )
  child.unref()
  fs.closeSync(out)
  fs.writeFileSync(paths.pidFile, `${child.pid}\n`)
  return child.pid
}

/** Polls until the broker answers (true), or until keepWaiting() says it never will / timeout (false). */
async function waitUntilAnswering(started, keepWaiting) {
  while (Date.now() - started < START_TIMEOUT_MS) {
    if (await kafkaAnswers(1000)) return true
    if (!keepWaiting()) return false
    await sleep(250)
  }
  return false
}

/**
 * Two starts can race (two test runs, or a test run and `npm run kafka:start`). Only the holder
 * of this lock file launches a JVM; the others wait for the port. A lock left by a dead process is taken over.
 */
function tryStartLock() {
  fs.mkdirSync(dataDir, { recursive: true })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(paths.startLock, `${process.pid}\n`, { flag: 'wx' })
      return true
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
    }
    if (lockHolderAlive()) return false
    fs.rmSync(paths.startLock, { force: true })
  }
  return false
}

function lockHolderAlive() {
  try {
    process.kill(Number(fs.readFileSync(paths.startLock, 'utf8')), 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

async function launchAndWait(started) {
  // A broker we launched earlier may still be booting: wait for it rather than start a second one.
  let pid = livePid()
  if (pid === null) {
    ensureJars()
    writeConfig()
    formatStorageOnce()
    pid = launchBroker()
    console.log(`kafka: started pid ${pid}, waiting for ${host}:${port} (log: ${paths.brokerLog})`)
  } else {
    console.log(`kafka: pid ${pid} is already starting, waiting for ${host}:${port}`)
  }
  // If the JVM dies early (bad config, port taken) there is no point waiting out the timeout.
  if (!(await waitUntilAnswering(started, () => isAlive(pid)))) {
    console.error(`--- ${paths.brokerLog} ---\n${logSummary(paths.brokerLog)}\n---`)
    if (isAlive(pid)) fail(`no answer within ${START_TIMEOUT_MS / 1000} s (pid ${pid} left running)`)
    fs.rmSync(paths.pidFile, { force: true })
    fail('broker exited')
  }
}

async function start() {
  if (await kafkaAnswers()) {
    console.log(`kafka: already running on ${host}:${port}`)
    return
  }
  if (!commandExists('java', ['-version']))
    fail('java not found on PATH (apt-get install openjdk-17-jre-headless)')
  const started = Date.now()
  if (tryStartLock()) {
    try {
      await launchAndWait(started)
    } finally {
      fs.rmSync(paths.startLock, { force: true })
    }
  } else {
    console.log(`kafka: another start is in progress, waiting for ${host}:${port}`)
    // The holder drops the lock once the broker answers, so ask once more after it is gone.
    const up = (await waitUntilAnswering(started, lockHolderAlive)) || (await kafkaAnswers())
    if (!up) fail('the other start did not bring the broker up')
  }
  console.log(`kafka: ready on ${host}:${port} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

async function stop() {
  const pid = livePid()
  if (pid === null) {
    if (await kafkaAnswers()) fail(`a broker answers on ${host}:${port} but was not started by this script`)
    console.log('kafka: not running')
    return
  }
  process.kill(pid, 'SIGTERM') // controlled shutdown; a single node takes a few seconds
  const deadline = Date.now() + STOP_TIMEOUT_MS
  while (isAlive(pid) && Date.now() < deadline) await sleep(200)
  if (isAlive(pid)) {
    console.warn(`kafka: pid ${pid} ignored SIGTERM for ${STOP_TIMEOUT_MS / 1000} s, sending SIGKILL`)
    process.kill(pid, 'SIGKILL')
  }
  fs.rmSync(paths.pidFile, { force: true })
  console.log(`kafka: stopped pid ${pid}`)
}

async function status() {
  if (await kafkaAnswers()) {
    const pid = livePid()
    console.log(`kafka: running on ${host}:${port}${pid ? ` (pid ${pid})` : ''}`)
    return
  }
  console.log(`kafka: not answering on ${host}:${port}`)
  process.exitCode = 1
}

const commands = { start, stop, status }
const command = commands[process.argv[2]]
if (!command) {
  console.error('usage: node scripts/kafka.mjs start|stop|status')
  process.exit(2)
}
try {
  await command()
} catch (err) {
  console.error(`kafka: ${err.message}`)
  process.exitCode = 1
}
