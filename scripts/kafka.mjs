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
// Only node: built-ins are used so this runs before `npm ci`. scripts/kafka-cluster.mjs runs three
// secured nodes; what both need is in scripts/lib/kafka-node.mjs, the start command's flow in
// scripts/lib/start-once.mjs.

import fs from 'node:fs'
import path from 'node:path'
// Declaration mirrored in scripts/kafka-cluster.mjs: both take their node's life cycle from scripts/lib/kafka-node.mjs.
import {
  ensureJars,
  fail,
  formatStorage,
  host,
  isAlive,
  isFormatted,
  kafkaAnswers,
  launchNode,
  livePid,
  logSummary,
  newClusterId,
  nodeFiles,
  repoRoot,
  requireJava,
  runCommand,
  START_TIMEOUT_MS,
  stopNode,
  waitUntil,
  writeNodeConfig,
} from './lib/kafka-node.mjs'
import { startOnce } from './lib/start-once.mjs'

const port = Number(process.env.KAFKA_PORT ?? 9092)
const controllerPort = port + 1
const files = nodeFiles(path.resolve(repoRoot, process.env.ADGATE_DATA_DIR ?? 'data', 'kafka'))
const answers = () => kafkaAnswers(port, { timeoutMs: 1000 })

function serverProperties() {
  return `process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${host}:${controllerPort}
listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}
advertised.listeners=PLAINTEXT://${host}:${port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=${files.logDirs}
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

async function launchAndWait(started) {
  requireJava()
  // A broker we launched earlier may still be booting: wait for it rather than start a second one.
  let pid = livePid(files.pidFile)
  if (pid === null) {
    ensureJars()
    writeNodeConfig(files, serverProperties())
    if (!isFormatted(files)) {
      const clusterId = newClusterId()
      await formatStorage(files, clusterId)
      console.log(`kafka: formatted ${files.logDirs} (cluster id ${clusterId})`)
    }
    pid = launchNode(files, ['-Xms256m', '-Xmx512m'])
    console.log(`kafka: started pid ${pid}, waiting for ${host}:${port} (log: ${files.brokerLog})`)
  } else {
    console.log(`kafka: pid ${pid} is already starting, waiting for ${host}:${port}`)
  }
  // If the JVM dies early (bad config, port taken) there is no point waiting out the timeout.
  if (!(await waitUntil(answers, () => isAlive(pid), started))) {
    console.error(`--- ${files.brokerLog} ---\n${logSummary(files.brokerLog)}\n---`)
    if (isAlive(pid)) fail(`no answer within ${START_TIMEOUT_MS / 1000} s (pid ${pid} left running)`)
    fs.rmSync(files.pidFile, { force: true })
    fail('broker exited')
  }
}

function start() {
  return startOnce({
    label: 'kafka',
    where: `${host}:${port}`,
    lockFile: path.join(files.dir, 'start.lock'),
    ready: answers,
    launch: launchAndWait,
  })
}

async function stop() {
  if (await stopNode(files, 'kafka')) return
  if (await answers()) fail(`a broker answers on ${host}:${port} but was not started by this script`)
  console.log('kafka: not running')
}

async function status() {
  if (await answers()) {
    const pid = livePid(files.pidFile)
    console.log(`kafka: running on ${host}:${port}${pid ? ` (pid ${pid})` : ''}`)
    return
  }
  console.log(`kafka: not answering on ${host}:${port}`)
  process.exitCode = 1
}

await runCommand('kafka', { start, stop, status })
