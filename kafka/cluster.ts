import {
  AuthenticationError,
  Connection,
  type ConnectionOptions,
  describeConfigsV4,
  initProducerIdV4,
  metadataV12,
  ResponseError,
  type ResponseParser,
  type Writer,
} from '@platformatic/kafka'
import { kafkaApiCodes } from './api-codes.js'
import type { ProducerIdentity } from './idempotence.js'

/**
 * The producer's view of the cluster, on @platformatic/kafka connections (so TLS and SASL come
 * from kafka/client-options.ts): one authenticated connection per broker, metadata asked of any
 * live broker (the ones learned from metadata first, then the bootstrap list, starting after the
 * last one that failed), connections to brokers that left the cluster closed. Every wait here is
 * bounded by the caller's deadline.
 */
export interface BrokerAddress {
  readonly host: string
  readonly port: number
}

export interface ClusterView {
  readonly brokers: ReadonlyMap<number, BrokerAddress>
  /** topic → partition → leader node id (-1: leaderless) */
  readonly leaders: ReadonlyMap<string, ReadonlyMap<number, number>>
}

export class DeadlineError extends Error {}

/** Rejects with DeadlineError at `deadline` (epoch ms) unless `work` settles first. */
export function beforeDeadline<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
  const ms = deadline - Date.now()
  if (ms <= 0) {
    work.catch(() => {})
    return Promise.reject(new DeadlineError(`${what}: no time left before the ack deadline`))
  }
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`${what}: no answer within ${ms} ms`)), ms)
  })
  work.catch(() => {})
  return Promise.race([work, late]).finally(() => clearTimeout(timer))
}

const SASL_FAILED =
  'SASL authentication failed: check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE) / the OAUTHBEARER token'

/** Connection failures that no retry fixes: credentials, certificates, the security protocol. */
export function securityProblem(err: unknown): string | null {
  const codes = kafkaApiCodes(err)
  if (codes.includes(58)) return SASL_FAILED
  if (codes.some((c) => c === 29 || c === 31))
    return 'Kafka denies adgate (TOPIC/CLUSTER_AUTHORIZATION_FAILED): grant the principal of KAFKA_SASL_USERNAME (or the client certificate) Describe, Write and Create on the adgate.* topics'
  for (let e = err as (Error & { code?: unknown; cause?: unknown }) | undefined; e; e = e.cause as typeof e) {
    if (e instanceof AuthenticationError) return SASL_FAILED
    const code = typeof e.code === 'string' ? e.code : ''
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME|ERR_SSL|EPROTO/.test(code))
      return `TLS handshake failed (${code}): check KAFKA_SECURITY_PROTOCOL and KAFKA_SSL_CA_FILE (the broker certificate must match its host name), KAFKA_SSL_CERT_FILE/KAFKA_SSL_KEY_FILE`
    if (/TLS handshake failed/.test(e.message ?? ''))
      return 'TLS handshake failed: the broker does not speak TLS there; check KAFKA_SECURITY_PROTOCOL'
  }
  return null
}

export class Cluster {
  private readonly connections = new Map<string, Connection>()
  private readonly bootstrap: BrokerAddress[]
  private view: ClusterView = { brokers: new Map(), leaders: new Map() }
  /** Where the next metadata request starts, so a dead broker is not asked first every time. */
  private cursor = 0
  /** max.message.bytes per topic, re-read with metadata at most every 30 s. */
  private readonly limits = new Map<string, number>()
  private limitsAt = 0

  constructor(
    brokers: readonly string[],
    private readonly clientId: string,
    private readonly options: ConnectionOptions,
    private readonly topics: readonly string[],
  ) {
    this.bootstrap = brokers.map((b) => {
      const colon = b.lastIndexOf(':')
      return { host: b.slice(0, colon), port: Number(b.slice(colon + 1)) }
    })
  }

  get current(): ClusterView {
    return this.view
  }

  /** Some partition of adgate's topics has no leader (or one missing from the broker list). */
  get leaderless(): boolean {
    for (const parts of this.view.leaders.values())
      for (const leader of parts.values()) if (leader < 0 || !this.view.brokers.has(leader)) return true
    return false
  }

  leaderOf(topic: string, partition: number): number | undefined {
    const leader = this.view.leaders.get(topic)?.get(partition)
    return leader === undefined || leader < 0 || !this.view.brokers.has(leader) ? undefined : leader
  }

  /** An authenticated connection to a broker, made at most once at a time. */
  async connection(to: BrokerAddress, deadline: number): Promise<Connection> {
    const key = `${to.host}:${to.port}`
    let c = this.connections.get(key)
    if (c && (c.status === 'closed' || c.status === 'error' || c.status === 'closing')) {
      this.drop(c)
      c = undefined
    }
    if (!c) {
      c = new Connection(this.clientId, this.options)
      c.on('error', () => {}) // surfaced through connect() and send()
      this.connections.set(key, c)
      ;(c.connect(to.host, to.port) as Promise<void>).catch(() => {})
    }
    const conn = c
    if (conn.isConnected()) return conn
    try {
      await beforeDeadline(conn.ready(), deadline, `connect to ${key}`)
      return conn
    } catch (err) {
      this.drop(conn)
      throw err
    }
  }

  connectionTo(nodeId: number, deadline: number): Promise<Connection> {
    const b = this.view.brokers.get(nodeId)
    if (!b) return Promise.reject(new Error(`broker ${nodeId} is not in the metadata`))
    return this.connection(b, deadline)
  }

  /**
   * A request on a connection; a connection that misses the deadline is taken as stuck and closed.
   * Closing is what the protocol leaves: a broker handles a connection's requests one at a time,
   * in order (it reads nothing more from the connection until the current request's response is
   * written), so every request behind an unanswered one waits with it, whatever its correlation
   * id. It is kept cheap: a Produce asks the broker to answer before this deadline
   * (brokerTimeoutMs), so a produce merely waiting for replicas gets REQUEST_TIMED_OUT and keeps
   * the connection; only a broker that answers nothing (stopped, partitioned) costs one; and the
   * requests that were in flight on it are sent again at once on a fresh connection, with their
   * sequence numbers (no duplicates), each still within its own ack deadline.
   */
  request<T>(
    conn: Connection,
    api: { key: number; version: number },
    payload: () => Writer,
    parser: ResponseParser<T>,
    flexible: boolean,
    deadline: number,
  ): Promise<T> {
    const ms = deadline - Date.now()
    // Not sent at all: the connection has nothing outstanding and stays.
    if (ms <= 0)
      return Promise.reject(
        new DeadlineError(`request to ${conn.host}:${conn.port}: no time left before the ack deadline`),
      )
    // One promise and one timer per request (not beforeDeadline's race): a Produce is sent per
    // HTTP request at moderate rates, so this runs as often as the routes do.
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const fail = (err: unknown) => {
        // An error answer (the response arrived) leaves the connection as it is.
        if (!(err instanceof ResponseError)) this.drop(conn)
        reject(err)
      }
      const timer = setTimeout(() => {
        settled = true
        fail(new DeadlineError(`request to ${conn.host}:${conn.port}: no answer within ${ms} ms`))
      }, ms)
      conn.send(api.key, api.version, payload, parser, flexible, flexible, (err, value) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        if (err) fail(err)
        else resolve(value as T)
      })
    })
  }

  /** Metadata for adgate's topics from the first broker that answers. */
  async refresh(deadline: number): Promise<ClusterView> {
    const known = [...this.view.brokers.values()]
    const candidates = [...known, ...this.bootstrap.filter((b) => !known.some((k) => same(k, b)))]
    let last: unknown = new Error('no brokers configured')
    for (let i = 0; i < candidates.length; i++) {
      const at = (this.cursor + i) % candidates.length
      const broker = candidates[at]!
      // A silent broker gets its share of the time left, not all of it: the next one may answer.
      const share = Math.max(500, (deadline - Date.now()) / (candidates.length - i))
      const attemptDeadline = Math.min(deadline, Date.now() + share)
      try {
        const conn = await this.connection(broker, attemptDeadline)
        const meta = await this.request(
          conn,
          metadataV12.api,
          () => metadataV12.createRequest([...this.topics], false, false),
          metadataV12.parseResponse,
          true,
          attemptDeadline,
        ).catch(partitionErrorsOnly)
        this.cursor = at
        const brokers = new Map(meta.brokers.map((b) => [b.nodeId, { host: b.host, port: b.port }]))
        const leaders = new Map<string, Map<number, number>>()
        for (const t of meta.topics) {
          if (t.errorCode !== 0 || !t.name) continue
          leaders.set(
            t.name,
            new Map(t.partitions.map((p) => [p.partitionIndex, p.errorCode === 0 ? p.leaderId : -1])),
          )
        }
        this.view = { brokers, leaders }
        this.closeRemoved()
        if (Date.now() - this.limitsAt >= 30_000) await this.readLimits(conn, deadline)
        return this.view
      } catch (err) {
        last = err
        if (securityProblem(err)) throw err
        if (Date.now() >= deadline) break
      }
    }
    this.cursor++
    throw last
  }

  maxMessageBytes(topic: string): number | undefined {
    return this.limits.get(topic)
  }

  /** The topics' max.message.bytes; without DescribeConfigs permission the limit stays unknown. */
  private async readLimits(conn: Connection, deadline: number): Promise<void> {
    this.limitsAt = Date.now()
    try {
      const r = await this.request(
        conn,
        describeConfigsV4.api,
        () =>
          describeConfigsV4.createRequest(
            this.topics.map((t) => ({
              resourceType: 2,
              resourceName: t,
              configurationKeys: ['max.message.bytes'],
            })),
            false,
            false,
          ),
        describeConfigsV4.parseResponse,
        true,
        deadline,
      )
      for (const result of r.results) {
        const value = result.configs.find((c) => c.name === 'max.message.bytes')?.value
        if (result.errorCode === 0 && value) this.limits.set(result.resourceName, Number(value))
      }
    } catch {
      // Unknown limits only mean Kafka itself refuses what is too large (a 413 then, never spooled).
    }
  }

  /** A producer id for idempotent writes (any broker answers InitProducerId without a transactional id). */
  async initProducerId(deadline: number): Promise<ProducerIdentity> {
    for (let attempt = 0; ; attempt++) {
      if (this.view.brokers.size === 0) await this.refresh(deadline)
      const nodeIds = [...this.view.brokers.keys()]
      const nodeId = nodeIds[(this.cursor + attempt) % nodeIds.length]!
      try {
        const conn = await this.connectionTo(nodeId, deadline)
        const r = await this.request(
          conn,
          initProducerIdV4.api,
          () => initProducerIdV4.createRequest(null, 60_000, -1n, -1),
          initProducerIdV4.parseResponse,
          true,
          deadline,
        )
        return { producerId: r.producerId, epoch: r.producerEpoch }
      } catch (err) {
        // A broker just started answers COORDINATOR_LOAD_IN_PROGRESS and the like for a while; a
        // broker that is gone (still in the metadata until it is fenced) leaves the next one to ask.
        const retriable =
          err instanceof ResponseError && err.errors.every((e) => (e as { canRetry?: boolean }).canRetry)
        const unreachable = !(err instanceof ResponseError) && securityProblem(err) === null
        if ((!retriable && !unreachable) || Date.now() + 100 >= deadline) throw err
        await new Promise((r) => setTimeout(r, retriable ? 100 : 20))
      }
    }
  }

  private closeRemoved(): void {
    const live = new Set<string>()
    for (const b of this.view.brokers.values()) live.add(`${b.host}:${b.port}`)
    for (const b of this.bootstrap) live.add(`${b.host}:${b.port}`)
    for (const [key, c] of this.connections) if (!live.has(key)) this.drop(c)
  }

  private drop(c: Connection): void {
    for (const [key, v] of this.connections) if (v === c) this.connections.delete(key)
    c.close().catch(() => {})
  }

  async close(): Promise<void> {
    const all = [...this.connections.values()]
    this.connections.clear()
    await Promise.all(all.map((c) => c.close().catch(() => {})))
  }
}

/**
 * A metadata answer whose only errors are some partitions' (LEADER_NOT_AVAILABLE while a
 * partition has no replica left): the answer, so the other partitions keep their leaders.
 * platformatic rejects the whole response for any error in it.
 */
function partitionErrorsOnly(err: unknown): MetadataResponse {
  const response = err instanceof ResponseError ? (err as { response?: unknown }).response : undefined
  const partitionLevel = (e: unknown) => /\/partitions\/\d+$/.test((e as { path?: string }).path ?? '')
  if (response === undefined || !(err as ResponseError).errors.every(partitionLevel)) throw err
  return response as MetadataResponse
}

type MetadataResponse = ReturnType<typeof metadataV12.parseResponse>

function same(a: BrokerAddress, b: BrokerAddress): boolean {
  return a.host === b.host && a.port === b.port
}
