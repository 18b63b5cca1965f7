// The gateway's parts for unit tests: the real routes, admission, ingest service, delivery and decode
// pool, with fakes only at the edges a unit test cannot have — Kafka (FakeSink), the SQLite spool
// thread (FakeSpool) and the worker threads (the pool's runner decodes in-process with the real
// decode task, or fails when told to). Routes are registered on a FakeApp (test/support/inject.ts).
import { loadConfig } from '../../config/config.js'
import { createLogger } from '../../config/logger.js'
import { type Routes, registerRoutes } from '../../gateway/app.js'
import { Authenticator } from '../../gateway/auth.js'
import { Delivery } from '../../gateway/delivery.js'
import { IngestService } from '../../gateway/ingest.js'
import { createGatewayMetrics, type GatewayMetrics } from '../../gateway/metrics.js'
import { GatewayQuality } from '../../gateway/quality.js'
import {
  ACKED,
  type BatchSet,
  type BatchSink,
  NotDurableError,
  type RefusedBatches,
  type SendProgress,
} from '../../kafka/batch-sink.js'
import { ALL_TOPICS } from '../../kafka/topics.js'
import type { Spool } from '../../spool/spool.js'
import { runDecodeTask } from '../../workers/decode-task.js'
import { DecodePool } from '../../workers/pool.js'
import { FakeApp } from './inject.js'

/** Kafka as the delivery sees it: acknowledges (recording what it got), is down, or fails sends. */
export class FakeSink {
  ready = true
  readonly securityFailure: string | null = null
  /** What a send does: 'ack', or fail with NotDurableError ('fail'), or never answer ('hang'). */
  mode: 'ack' | 'fail' | 'hang' = 'ack'
  readonly records: { topic: string; partition: number; records: number }[] = []
  readonly bufferedBytes = 0
  readonly inFlightRequests = 0
  readonly stats = { requests: 0, errors: 0, records: 0, bytes: 0, possibleDuplicates: 0 }

  refusal(): null {
    return null
  }
  batchRefusal(): null {
    return null
  }
  available(): boolean {
    return this.ready
  }
  partitionCounts(): Record<string, number> {
    return Object.fromEntries(ALL_TOPICS.map((t) => [t, 2]))
  }
  send(set: BatchSet, progress?: SendProgress): Promise<RefusedBatches> {
    if (this.mode === 'hang') return new Promise(() => {})
    if (this.mode === 'fail') return Promise.reject(new NotDurableError('Kafka did not acknowledge'))
    set.batches.forEach((b, i) => {
      this.records.push({ topic: b.topic, partition: b.partition, records: b.records })
      if (progress) progress.acked[i] = ACKED
    })
    return Promise.resolve(new Map())
  }
}

/** The spool as the delivery sees it, in memory: appends until `maxBytes`. */
export class FakeSpool {
  bytes = 0
  records = 0
  readonly entries: BatchSet['batches'][number][] = []
  readonly oldest = null
  constructor(readonly maxBytes: number) {}

  get full(): boolean {
    return this.bytes >= this.maxBytes
  }
  get inUse(): boolean {
    return this.entries.length > 0
  }
  holds(topic: string, partition: number): boolean {
    return this.entries.some((b) => b.topic === topic && b.partition === partition)
  }
  async append(set: BatchSet): Promise<void> {
    for (const b of set.batches) {
      this.entries.push(b)
      this.bytes += b.length
      this.records += b.records
    }
  }
}

export interface FakeGateway {
  readonly app: FakeApp
  readonly sink: FakeSink
  readonly spool: FakeSpool | null
  readonly metrics: GatewayMetrics
  readonly ingest: IngestService
  readonly routes: Routes
  /** The next decode task fails as a crashed worker would. */
  crashNextTask(): void
  close(): Promise<void>
}

/** The gateway's routes over fakes; `env` are ADGATE_* settings (validated as at start-up). */
export function fakeGateway(
  env: Record<string, string> = {},
  options: { spool?: boolean } = {},
): FakeGateway {
  const config = loadConfig(env)
  const logger = createLogger('silent', 'gateway')
  const metrics = createGatewayMetrics()
  const sink = new FakeSink()
  const spool = options.spool === false ? null : new FakeSpool(config.spoolMaxBytes)
  let crash = false
  const pool = new DecodePool({
    workers: 1,
    maxBytes: config.maxBodyBytes,
    maxEvents: config.maxEvents,
    partitions: () => sink.partitionCounts(),
    maxTaskBytes: config.batchBytes,
    lingerMs: 0,
    taskTimeoutMs: config.decodeTimeoutMs,
    // Lone quiet bodies are decoded on this thread, as in production; a crash armed by
    // crashNextTask() must reach the runner (the stand-in for a worker thread), so it turns that off.
    inline: () => !crash,
    startRunner: () => ({
      queueSize: 0,
      run: async (task) => {
        if (!crash) return runDecodeTask(task)
        crash = false
        throw new Error('worker exited with code 1')
      },
      destroy: async () => {},
    }),
  })
  const quality = new GatewayQuality(config, metrics, logger)
  const delivery = new Delivery(
    sink as unknown as BatchSink,
    spool as unknown as Spool | null,
    config.spoolAfterMs,
  )
  const ingest = new IngestService(pool, delivery, metrics, logger, quality)
  const auth = new Authenticator(config.apiKeys, config.rateLimitRps)
  const app = new FakeApp()
  // Declaration mirrored in gateway/server.ts: the same parts as production, with fakes for the pool, sink and spool.
  const routes = registerRoutes(app.app, {
    config,
    logger,
    metrics,
    auth,
    ingest,
    pool,
    delivery,
    quality,
    sink: sink as unknown as BatchSink,
    spool: spool as unknown as Spool | null,
    replayer: null,
  })
  return {
    app,
    sink,
    spool,
    metrics,
    ingest,
    routes,
    crashNextTask: () => {
      crash = true
    },
    close: async () => {
      routes.close()
      await pool.close()
      quality.close()
    },
  }
}
