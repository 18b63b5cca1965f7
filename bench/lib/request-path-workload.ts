import type { Workload } from './harness.js'

/**
 * One POST /v1/impressions through the gateway's request path, in process, by the build under
 * `root` (a dist/ directory as a file URL ending in '/': this build's or an earlier commit's, see
 * baseline-build.ts): the real routes (header checks, body reading, answer, metrics), ingest
 * service, refused-work accounting, data-quality observation, delivery and decode pool, as
 * startGateway wires them, with the pool's task observer. Fakes only at the edges: uWS (a request
 * whose body arrives in one chunk), the worker threads (the pool decodes lone bodies inline, as at
 * low rates), Kafka (acknowledges at once) and the spool (empty). One call is one request answered;
 * a factory for measureIsolated, so each build runs in a thread of its own.
 */
export interface RequestPathSpec {
  readonly name: string
  readonly root: string
  readonly eventsPerBody: number
  /** false: the gateway's metrics off (no-op), to show what they weigh. */
  readonly metrics?: boolean
}

const PARTITIONS = 4 // ADGATE_TOPIC_PARTITIONS's default

// biome-ignore lint/suspicious/noExplicitAny: the build's modules are loaded by path, untyped
type Module = Record<string, any>

async function load(root: string): Promise<Module> {
  const modules = [
    'config/config.js',
    'config/logger.js',
    'gateway/app.js',
    'gateway/auth.js',
    'gateway/delivery.js',
    'gateway/ingest.js',
    'gateway/metrics.js',
    'gateway/quality.js',
    'gateway/refused-work.js',
    'kafka/batch-sink.js',
    'kafka/protocol/record-batch.js',
    'kafka/topics.js',
    'workers/decode-task.js',
    'workers/pool.js',
    'generator/encode.js',
    'generator/funnel.js',
  ]
  return Object.assign({}, ...(await Promise.all(modules.map((m) => import(new URL(m, root).href)))))
}

export async function requestPathWorkload(spec: RequestPathSpec): Promise<Workload> {
  const b = await load(spec.root)
  const config = b.loadConfig({})
  const logger = b.createLogger('silent', 'gateway')
  const metrics = b.createGatewayMetrics({ enabled: spec.metrics !== false })
  const counts = Object.fromEntries((b.ALL_TOPICS as string[]).map((t) => [t, PARTITIONS]))
  const sink = {
    ready: true,
    securityFailure: null,
    batchRefusal: () => null,
    available: () => true,
    partitionCounts: () => ({ ...counts }),
    send: (_set: unknown, progress?: { acked: Uint8Array }) => {
      if (progress) progress.acked.fill(b.ACKED)
      return Promise.resolve(new Map())
    },
  }
  const spool = { full: false, holds: () => false }
  const pool = new b.DecodePool({
    workers: 1,
    maxBytes: config.maxBodyBytes,
    maxEvents: config.maxEvents,
    partitions: () => ({ ...sink.partitionCounts() }),
    maxTaskBytes: config.batchBytes,
    lingerMs: config.lingerMs,
    taskTimeoutMs: config.decodeTimeoutMs,
    budgetMs: config.requestCpuMs,
    onTask: b.observeTask
      ? (result: unknown) => b.observeTask(metrics, result)
      : (result: TaskResultFigures | null) => observeTaskBefore(metrics, result, b.RECORD_BATCH_HEADER_BYTES),
    inline: () => true, // a quiet event loop, as at the profile's 222 requests/s
    startRunner: () => ({
      queueSize: 0,
      run: async (task: unknown) => b.runDecodeTask(task),
      destroy: async () => {},
    }),
  })
  const quality = new b.GatewayQuality(config, metrics, logger)
  const delivery = new b.Delivery(sink, spool, config.spoolAfterMs)
  const refused = new b.RefusedWork(config.refusedCpuMsPerS)
  const ingest = new b.IngestService(pool, delivery, metrics, logger, quality, refused)
  const auth = new b.Authenticator(config.apiKeys, config.rateLimitRps)
  const app = new FakeApp()
  b.registerRoutes(app, {
    config,
    logger,
    metrics,
    auth,
    ingest,
    pool,
    delivery,
    quality,
    sink,
    spool,
    replayer: null,
  })
  const handler = app.posts.get('/v1/impressions')!
  const events = b.generateEvents('impression', spec.eventsPerBody, 5000)
  const body: Buffer = b.encodeEvents('impression', events, 'json')
  // As the strict-HTTP guard forwards a request (the default): its peer header, no request id.
  const headers = new Map([
    ['host', '127.0.0.1'],
    ['content-type', 'application/json'],
    ['content-length', String(body.length)],
    ['x-adgate-peer', '127.0.0.1'],
  ])
  const req = {
    getHeader: (name: string) => headers.get(name) ?? '',
    forEach: (cb: (name: string, value: string) => void) => {
      for (const [k, v] of headers) cb(k, v)
    },
  }
  const chunk = new ArrayBuffer(body.length)
  return {
    name: spec.name,
    events: 1, // so CPU-s per million "events" is µs per request
    bytes: body.length,
    fn: () =>
      new Promise<number>((resolve, reject) => {
        const res = new FakeResponse((status) =>
          status === 200 ? resolve(status) : reject(new Error(`${status}`)),
        )
        handler(res, req)
        new Uint8Array(chunk).set(body)
        res.data!(chunk, true)
      }),
  }
}

/** What observeTask reads of a TaskResult. */
interface TaskResultFigures {
  readonly busyMs: number
  readonly rawBytes: number
  readonly batches: readonly { readonly records: number; readonly length: number }[]
}

/** a73b5fa's observeTask (gateway/server.ts, not exported there), for a build without the export. */
function observeTaskBefore(
  // biome-ignore lint/suspicious/noExplicitAny: the build's metrics, untyped
  metrics: any,
  result: TaskResultFigures | null,
  headerBytes: number,
): void {
  if (result === null) {
    metrics.workerTasks.inc({ result: 'failed' })
    return
  }
  metrics.workerTasks.inc({ result: 'ok' })
  metrics.workerBusy.inc(result.busyMs / 1000)
  if (result.batches.length === 0) return
  let compressed = 0
  for (const b of result.batches) {
    metrics.batchRecords.observe(b.records)
    metrics.batchBytes.observe(b.length)
    compressed += b.length - headerBytes
  }
  metrics.batchUncompressed.inc(result.rawBytes)
  metrics.batchCompressed.inc(compressed)
}

type Handler = (res: FakeResponse, req: unknown) => void

/** The routes' uWS app: records the POST handlers, takes the other routes and ignores them. */
class FakeApp {
  readonly posts = new Map<string, Handler>()
  post(pattern: string, handler: Handler): this {
    this.posts.set(pattern, handler)
    return this
  }
  get(): this {
    return this
  }
  head(): this {
    return this
  }
  any(): this {
    return this
  }
  ws(): this {
    return this
  }
}

/** A uWS response: the body arrives through `data`, the reply's status resolves `done`. */
class FakeResponse {
  data: ((chunk: ArrayBuffer, isLast: boolean) => void) | null = null
  private status = 0
  constructor(private readonly done: (status: number) => void) {}
  onAborted(): this {
    return this
  }
  onData(cb: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.data = cb
    return this
  }
  cork(cb: () => void): this {
    cb()
    return this
  }
  writeStatus(status: string): this {
    this.status = Number.parseInt(status, 10)
    return this
  }
  writeHeader(): this {
    return this
  }
  end(): this {
    this.done(this.status)
    return this
  }
  getRemoteAddressAsText(): ArrayBuffer {
    return new TextEncoder().encode('127.0.0.1').buffer as ArrayBuffer
  }
}
