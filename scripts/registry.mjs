#!/usr/bin/env node
// Runs a local Apicurio Registry (Confluent-compatible API under /apis/ccompat/v7) on 127.0.0.1,
// the real schema registry the tests of ADGATE_SCHEMA_REGISTRY_URL run against.
//
//   node scripts/registry.mjs fetch|start|stop|status
//
// Environment:
//   REGISTRY_PORT    HTTP port (default 8085); the management interface listens on REGISTRY_PORT+1
//   ADGATE_DATA_DIR  data root (default ./data): <data>/registry/<port> holds registry.log and registry.pid
//   JAVA_HOME        a Java 21+ (Apicurio 3 needs it); else the newest /usr/lib/jvm/* that is 21+,
//                    else `java` on PATH if it is
//
// The app is Maven Central's io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all (158 MB, cached in
// ~/.m2 by `fetch`), unpacked under ops/registry/target/. Storage is in memory: a restart forgets
// every subject. Only node: built-ins are used so this runs before `npm ci`.

import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {
  fail,
  host,
  livePid,
  logSummary,
  portTaken,
  repoRoot,
  runCommand,
  START_TIMEOUT_MS,
  stopNode,
  waitUntil,
} from './lib/kafka-node.mjs'
import { startOnce } from './lib/start-once.mjs'

const VERSION = '3.3.3'
const ARTIFACT = `io.apicurio:apicurio-registry-app:${VERSION}:tar.gz:all`
const port = Number(process.env.REGISTRY_PORT ?? 8085)
const targetDir = path.join(repoRoot, 'ops/registry/target')
const appDir = path.join(targetDir, `apicurio-registry-app-${VERSION}`)
// Per port: a registry started on another port is another process with its own pid file.
const dataDir = path.resolve(repoRoot, process.env.ADGATE_DATA_DIR ?? 'data', 'registry', String(port))
const files = {
  dir: dataDir,
  log: path.join(dataDir, 'registry.log'),
  pidFile: path.join(dataDir, 'registry.pid'),
  lock: path.join(dataDir, 'start.lock'),
  marker: 'quarkus-run.jar',
}
const url = `http://${host}:${port}/apis/ccompat/v7`

/** True when a Confluent-compatible registry answers on the port (not merely something listening). */
async function registryAnswers() {
  try {
    const res = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2000) })
    return res.status === 200 && Array.isArray(await res.json())
  } catch {
    return false
  }
}

/** Maven's copy of the tarball (cached in ~/.m2), unpacked once. */
function fetchApp() {
  if (fs.existsSync(path.join(appDir, 'quarkus-run.jar'))) return
  console.log(`registry: fetching ${ARTIFACT} with Maven (158 MB, first run only)...`)
  fs.mkdirSync(targetDir, { recursive: true })
  const mvn = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      'org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy',
      `-Dartifact=${ARTIFACT}`,
      `-DoutputDirectory=${targetDir}`,
    ],
    { stdio: 'inherit', cwd: targetDir },
  )
  if (mvn.error) fail('mvn not found on PATH; install Maven (apt-get install maven)')
  if (mvn.status !== 0) fail(`mvn exited with ${mvn.status}`)
  const tarball = path.join(targetDir, `apicurio-registry-app-${VERSION}-all.tar.gz`)
  fs.mkdirSync(appDir, { recursive: true })
  const tar = spawnSync('tar', ['xzf', tarball, '-C', appDir], { stdio: 'inherit' })
  if (tar.status !== 0) fail(`tar exited with ${tar.status}`)
  fs.rmSync(tarball) // ~/.m2 keeps it
}

function javaMajor(java) {
  const r = spawnSync(java, ['-version'], { encoding: 'utf8' })
  if (r.error) return 0
  const m = /version "(\d+)/.exec(r.stderr)
  return m ? Number(m[1]) : 0
}

/** A Java 21+: JAVA_HOME's, the newest under /usr/lib/jvm (Temurin here), or the one on PATH. */
function findJava() {
  const candidates = []
  if (process.env.JAVA_HOME) candidates.push(path.join(process.env.JAVA_HOME, 'bin/java'))
  try {
    for (const d of fs.readdirSync('/usr/lib/jvm')) candidates.push(path.join('/usr/lib/jvm', d, 'bin/java'))
  } catch {}
  candidates.push('java')
  const found = candidates
    .filter((j) => j === 'java' || fs.existsSync(j))
    .map((j) => ({ j, major: javaMajor(j) }))
    .filter((c) => c.major >= 21)
    .sort((a, b) => b.major - a.major)[0]
  if (!found)
    fail(
      'Apicurio Registry 3 needs Java 21+; none found (JAVA_HOME, /usr/lib/jvm/*, PATH). Install e.g. Temurin 21.',
    )
  return found.j
}

function launch(java) {
  fs.mkdirSync(dataDir, { recursive: true })
  if (fs.existsSync(files.log)) fs.renameSync(files.log, `${files.log}.1`)
  const out = fs.openSync(files.log, 'a')
  const child = spawn(
    java,
    [
      '-Xmx192m',
      '-XX:+UseSerialGC',
      `-Dquarkus.http.host=${host}`,
      `-Dquarkus.http.port=${port}`,
      // Without these it also opens 0.0.0.0:9000.
      `-Dquarkus.management.host=${host}`,
      `-Dquarkus.management.port=${port + 1}`,
      '-Dquarkus.otel.sdk.disabled=true',
      '-jar',
      path.join(appDir, 'quarkus-run.jar'),
    ],
    { cwd: appDir, detached: true, stdio: ['ignore', out, out] },
  )
  child.unref()
  fs.closeSync(out)
  fs.writeFileSync(files.pidFile, `${child.pid}\n`)
  return child.pid
}

async function fetchCommand() {
  fetchApp()
  console.log(`registry: ${appDir}`)
}

async function launchAndWait(started) {
  let pid = livePid(files.pidFile, files.marker)
  if (pid === null) {
    if (await portTaken(port))
      fail(`port ${port} is taken by something that is not a schema registry (set REGISTRY_PORT)`)
    fetchApp()
    pid = launch(findJava())
    console.log(`registry: started pid ${pid}, waiting for ${url} (log: ${files.log})`)
  }
  const alive = () => livePid(files.pidFile, files.marker) !== null
  if (!(await waitUntil(registryAnswers, alive, started))) {
    console.error(`--- ${files.log} ---\n${logSummary(files.log)}\n---`)
    if (alive()) fail(`no answer within ${START_TIMEOUT_MS / 1000} s (pid ${pid} left running)`)
    fail('the registry exited')
  }
}

function start() {
  return startOnce({
    label: 'registry',
    where: url,
    lockFile: files.lock,
    ready: registryAnswers,
    launch: launchAndWait,
  })
}

async function stop() {
  if (await stopNode(files, 'registry')) return
  if (await registryAnswers()) fail(`a registry answers on ${url} but was not started by this script`)
  console.log('registry: not running')
}

async function status() {
  if (await registryAnswers()) {
    const pid = livePid(files.pidFile, files.marker)
    console.log(`registry: running on ${url}${pid ? ` (pid ${pid})` : ''}`)
    return
  }
  console.log(`registry: not answering on ${url}`)
  process.exitCode = 1
}

await runCommand('registry', { fetch: fetchCommand, start, stop, status })
