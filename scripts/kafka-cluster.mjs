#!/usr/bin/env node

// Runs a secured three-node Apache Kafka cluster (KRaft, broker+controller in each JVM) on 127.0.0.1,
// shaped like the clusters adgate meets in production: TLS with a private CA, SCRAM logins, ACLs
// enforced by the StandardAuthorizer, replication factor 3 and min.insync.replicas 2 by default.
//
//   node scripts/kafka-cluster.mjs start            starts the nodes that are not running, waits for all
//   node scripts/kafka-cluster.mjs stop [id]        stops every node, or node <id> (1-3; controlled shutdown)
//   node scripts/kafka-cluster.mjs status           exit 0 when all three nodes answer
//
// Environment:
//   KAFKA_CLUSTER_BASE_PORT  default 29092. Node i (1-3) listens on base+i-1 (SASL_SSL: SCRAM-SHA-512,
//                            SCRAM-SHA-256, PLAIN, OAUTHBEARER with unsigned tokens), base+2+i (SSL with
//                            required client certificates: mTLS) and base+5+i (its controller, PLAINTEXT).
//   ADGATE_DATA_DIR          data root (default ./data); the cluster lives in <data>/kafka-cluster.
//
// <data>/kafka-cluster/cluster.json tells tests how to connect: broker lists per listener, the CA,
// the client certificate for mTLS, and three users (their passwords are drawn at the first start):
//   admin   super user
//   adgate  all operations on topics, groups and transactional ids prefixed "adgate", idempotent
//           writes; the mTLS client certificate (CN=adgate) maps to this user too
//   noacl   authenticates, is allowed nothing
// Only node: built-ins (and openssl, java) are used so this runs before `npm ci`.

import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
// Declaration mirrored in scripts/kafka.mjs: both take their node's life cycle from scripts/lib/kafka-node.mjs.
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
  portTaken,
  repoRoot,
  requireJava,
  runCommand,
  runTool,
  START_TIMEOUT_MS,
  stopNode,
  waitUntil,
  writeNodeConfig,
} from './lib/kafka-node.mjs'
import { startOnce } from './lib/start-once.mjs'

const label = 'kafka-cluster'
const basePort = Number(process.env.KAFKA_CLUSTER_BASE_PORT ?? 29092)
const dir = path.resolve(repoRoot, process.env.ADGATE_DATA_DIR ?? 'data', 'kafka-cluster')
const files = {
  info: path.join(dir, 'cluster.json'),
  caKey: path.join(dir, 'ca.key'),
  caCert: path.join(dir, 'ca.crt'),
  brokerPem: path.join(dir, 'broker.pem'),
  clientKey: path.join(dir, 'client.key'),
  clientCert: path.join(dir, 'client.crt'),
  adminConfig: path.join(dir, 'admin.properties'),
  aclsDone: path.join(dir, 'acls.done'),
  startLock: path.join(dir, 'start.lock'),
}
const ACL_PREFIX = 'adgate'
const WHOLE_STOP_TIMEOUT_MS = 15_000
const ACL_TOOL = 'org.apache.kafka.tools.AclCommand'
const HEAP = ['-Xms96m', '-Xmx256m', '-XX:+UseSerialGC'] // three JVMs stay well under 2 GiB
const nodes = [1, 2, 3].map((id) => ({
  id,
  port: basePort + id - 1,
  sslPort: basePort + 2 + id,
  controllerPort: basePort + 5 + id,
  files: nodeFiles(path.join(dir, `node-${id}`)),
}))
const answers = (node) => kafkaAnswers(node.port, { caFile: files.caCert, timeoutMs: 1000 })

// ---------------------------------------------------------------------------
// Certificates and users (made once per data directory, kept across restarts)

function openssl(args) {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' })
  if (r.error) fail('openssl not found on PATH (apt-get install openssl)')
  if (r.status !== 0) fail(`openssl ${args[0]} failed:\n${r.stderr}`)
}

/** A key and a certificate signed by the cluster CA; `extensions` go into the certificate. */
function signedCertificate(name, subject, extensions) {
  const extFile = path.join(dir, `${name}.ext`)
  fs.writeFileSync(extFile, `${extensions}\n`)
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  ])
  const serial = `0x${randomBytes(8).toString('hex')}`
  openssl([
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-set_serial',
    serial,
    '-days',
    '3650',
    '-extfile',
    extFile,
    '-out',
    `${name}.crt`,
  ])
  fs.rmSync(path.join(dir, `${name}.csr`))
  fs.rmSync(extFile)
}

function ensureCertificates() {
  if (fs.existsSync(files.brokerPem) && fs.existsSync(files.clientCert)) return
  fs.mkdirSync(dir, { recursive: true })
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '3650',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ].concat(['-subj', '/CN=adgate test CA']),
  )
  signedCertificate(
    'broker',
    '/CN=localhost',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth',
  )
  // Kafka's PEM keystore takes the (PKCS#8) key and the certificate chain from one file.
  fs.writeFileSync(
    files.brokerPem,
    fs.readFileSync(path.join(dir, 'broker.key'), 'utf8') +
      fs.readFileSync(path.join(dir, 'broker.crt'), 'utf8'),
  )
  signedCertificate('client', '/CN=adgate', 'extendedKeyUsage=clientAuth')
  console.log(`${label}: made a CA and broker/client certificates in ${dir}`)
}

const password = () => randomBytes(12).toString('base64url')

/** The coordinates tests read; the passwords are drawn once, before the storage is formatted. */
function clusterInfo() {
  const previous = fs.existsSync(files.info) ? JSON.parse(fs.readFileSync(files.info, 'utf8')) : null
  const users = previous?.users ?? {
    admin: { username: 'admin', password: password() },
    adgate: { username: 'adgate', password: password() },
    noacl: { username: 'noacl', password: password() },
  }
  // The same passwords in files too, for settings such as KAFKA_SASL_PASSWORD_FILE.
  for (const user of Object.values(users)) {
    user.passwordFile = path.join(dir, `${user.username}.password`)
    fs.writeFileSync(user.passwordFile, `${user.password}\n`, { mode: 0o600 })
  }
  return {
    brokers: nodes.map((n) => `${host}:${n.port}`),
    mtlsBrokers: nodes.map((n) => `${host}:${n.sslPort}`),
    saslMechanisms: ['SCRAM-SHA-512', 'SCRAM-SHA-256', 'PLAIN', 'OAUTHBEARER'],
    caFile: files.caCert,
    clientCertFile: files.clientCert,
    clientKeyFile: files.clientKey,
    aclPrefix: ACL_PREFIX,
    users,
    nodes: nodes.map((n) => ({
      id: n.id,
      broker: `${host}:${n.port}`,
      pidFile: n.files.pidFile,
      log: n.files.brokerLog,
    })),
  }
}

function writeClusterInfo() {
  const info = clusterInfo()
  fs.writeFileSync(files.info, `${JSON.stringify(info, null, 2)}\n`)
  return info
}

// ---------------------------------------------------------------------------
// Node configuration

const jaas = (module, options) =>
  `${module} required ${Object.entries(options)
    .map(([k, v]) => `${k}="${v}"`)
    .join(' ')};`

function serverProperties(node, info) {
  const admin = { username: info.users.admin.username, password: info.users.admin.password }
  const plainUsers = Object.fromEntries(
    Object.values(info.users).map((u) => [`user_${u.username}`, u.password]),
  )
  const voters = nodes.map((n) => `${n.id}@${host}:${n.controllerPort}`).join(',')
  return `process.roles=broker,controller
node.id=${node.id}
controller.quorum.voters=${voters}
listeners=SASL_SSL://${host}:${node.port},SSL://${host}:${node.sslPort},CONTROLLER://${host}:${node.controllerPort}
advertised.listeners=SASL_SSL://${host}:${node.port},SSL://${host}:${node.sslPort}
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
sasl.enabled.mechanisms=${info.saslMechanisms.join(',')}
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${jaas('org.apache.kafka.common.security.scram.ScramLoginModule', admin)}
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${jaas('org.apache.kafka.common.security.scram.ScramLoginModule', admin)}
listener.name.sasl_ssl.plain.sasl.jaas.config=${jaas('org.apache.kafka.common.security.plain.PlainLoginModule', { ...admin, ...plainUsers })}
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=${jaas('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule', { unsecuredLoginStringClaim_sub: 'admin' })}
ssl.keystore.type=PEM
ssl.keystore.location=${files.brokerPem}
ssl.truststore.type=PEM
ssl.truststore.location=${files.caCert}
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
# ANONYMOUS: the PLAINTEXT controller listener (CONTROLLER_REGISTRATION needs CLUSTER_ACTION)
super.users=User:admin;User:ANONYMOUS
log.dirs=${node.files.logDirs}
auto.create.topics.enable=false
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
# The cleaner's default 128 MiB dedupe buffer is half a node's heap: one allocation at start-up
# that ran a node out of memory on a loaded machine (compacted topics here are tiny).
log.cleaner.dedupe.buffer.size=16777216
`
}

function adminClientProperties(info) {
  return `security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=${jaas('org.apache.kafka.common.security.scram.ScramLoginModule', { username: info.users.admin.username, password: info.users.admin.password })}
ssl.truststore.type=PEM
ssl.truststore.location=${files.caCert}
`
}

/** Every SCRAM user exists before the first start: Kafka stores them in the cluster metadata. */
function scramArgs(info) {
  return Object.values(info.users).flatMap((u) =>
    ['SCRAM-SHA-512', 'SCRAM-SHA-256'].flatMap((m) => [
      '--add-scram',
      `${m}=[name=${u.username},password=${u.password}]`,
    ]),
  )
}

/** ACLs live in the cluster metadata too, so they are granted once, after the first start. */
async function grantAcls(node) {
  if (fs.existsSync(files.aclsDone)) return
  const base = [
    '--bootstrap-server',
    `${host}:${node.port}`,
    '--command-config',
    files.adminConfig,
    '--add',
    '--allow-principal',
    `User:${ACL_PREFIX}`,
  ]
  const prefixed = ['--topic', ACL_PREFIX, '--group', ACL_PREFIX, '--transactional-id', ACL_PREFIX]
  await Promise.all([
    runTool(node.files, ACL_TOOL, [
      ...base,
      '--operation',
      'All',
      ...prefixed,
      '--resource-pattern-type',
      'prefixed',
    ]),
    runTool(node.files, ACL_TOOL, [
      ...base,
      '--operation',
      'IdempotentWrite',
      '--operation',
      'Describe',
      '--cluster',
    ]),
  ])
  fs.writeFileSync(files.aclsDone, `${new Date().toISOString()}\n`)
  console.log(`${label}: granted User:${ACL_PREFIX} its ACLs (prefix "${ACL_PREFIX}")`)
}

// ---------------------------------------------------------------------------
// Commands

async function launchAndWait(started) {
  requireJava()
  ensureJars()
  ensureCertificates()
  const info = writeClusterInfo()
  fs.writeFileSync(files.adminConfig, adminClientProperties(info))
  const fresh = nodes.every((n) => !isFormatted(n.files))
  const clusterId = fresh ? newClusterId() : null
  const waiting = nodes.filter((n) => livePid(n.files.pidFile) === null)
  for (const node of waiting) {
    for (const port of [node.port, node.sslPort, node.controllerPort]) {
      if (await portTaken(port))
        fail(
          `port ${port} is taken by a process this script did not start (another checkout's cluster? set KAFKA_CLUSTER_BASE_PORT)`,
        )
    }
  }
  for (const node of waiting) writeNodeConfig(node.files, serverProperties(node, info))
  if (clusterId) await Promise.all(nodes.map((n) => formatStorage(n.files, clusterId, scramArgs(info))))
  const unformatted = nodes.find((n) => !isFormatted(n.files))
  if (unformatted)
    fail(`node ${unformatted.id} has no storage but the others do: remove ${dir} to start afresh`)
  for (const node of waiting) {
    const pid = launchNode(node.files, HEAP)
    console.log(`${label}: node ${node.id} started, pid ${pid} (log: ${node.files.brokerLog})`)
  }
  const pids = nodes.map((n) => livePid(n.files.pidFile))
  if (clusterId) console.log(`${label}: formatted three nodes (cluster id ${clusterId})`)
  for (const [i, node] of nodes.entries()) {
    if (
      await waitUntil(
        () => answers(node),
        () => isAlive(pids[i]),
        started,
      )
    )
      continue
    console.error(`--- ${node.files.brokerLog} ---\n${logSummary(node.files.brokerLog)}\n---`)
    if (isAlive(pids[i]))
      fail(`node ${node.id}: no answer within ${START_TIMEOUT_MS / 1000} s (pid ${pids[i]} left running)`)
    fs.rmSync(node.files.pidFile, { force: true })
    fail(`node ${node.id} exited`)
  }
  await grantAcls(nodes[0])
}

async function allAnswer() {
  return (await Promise.all(nodes.map(answers))).every(Boolean)
}

async function start() {
  const startedNow = await startOnce({
    label,
    where: `${host}:${nodes[0].port}-${nodes[2].port}`,
    lockFile: files.startLock,
    // ACLs included: the holder grants them last, then drops the lock.
    ready: async () => fs.existsSync(files.aclsDone) && (await allAnswer()),
    launch: launchAndWait,
  })
  if (!startedNow) writeClusterInfo() // a cluster started by an older version of this script gets today's fields
  console.log(`${label}: coordinates in ${files.info}`)
}

async function stop(id) {
  if (id !== undefined) {
    const node = nodes.find((n) => String(n.id) === id)
    if (!node) fail(`no node ${id} (nodes are 1, 2, 3)`)
    // Controlled shutdown: its partition leaderships move to the nodes still up.
    if (!(await stopNode(node.files, `${label} node ${node.id}`)))
      console.log(`${label}: node ${id} not running`)
    return
  }
  // All at once: the last node of a cluster stopped one by one has no controller quorum to finish
  // its controlled shutdown, and would wait for it until killed.
  const stopped = await Promise.all(
    nodes.map((n) => stopNode(n.files, `${label} node ${n.id}`, WHOLE_STOP_TIMEOUT_MS)),
  )
  if (!stopped.some(Boolean)) console.log(`${label}: not running`)
}

async function status() {
  let up = 0
  for (const node of nodes) {
    const pid = livePid(node.files.pidFile)
    const ok = await answers(node)
    if (ok) up++
    console.log(
      `${label}: node ${node.id} ${ok ? 'answers' : 'does not answer'} on ${host}:${node.port}${pid ? ` (pid ${pid})` : ''}`,
    )
  }
  if (up < nodes.length) process.exitCode = 1
}

await runCommand(label, { start, stop, status })
