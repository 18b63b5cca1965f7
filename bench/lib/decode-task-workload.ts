import type { Encoding } from '../../decoders/result.js'
import type { EventType } from '../../events/catalog.js'
import type { Workload } from './harness.js'

/**
 * A worker's decode task (decode, validate, rules, encode, batch: runDecodeTask) by the build under
 * `root` (a dist/ directory as a file URL ending in '/': this build's or an earlier commit's, see
 * baseline-build.ts), with the per-request CPU budget set as the gateway sets it. A factory for
 * measureIsolated, so every build runs in a thread of its own with its own modules.
 */
export interface DecodeTaskSpec {
  readonly name: string
  readonly root: string
  readonly bodies: number
  readonly eventsPerBody: number
  /** Impressions as JSON unless told. */
  readonly type?: EventType
  readonly encoding?: Encoding
  /** With the shipped default data-quality rules in force, as in production (else none). */
  readonly rules?: boolean
}

/** Partitions per topic the benches' decode tasks spread records over. */
export const PARTITIONS = {
  'adgate.bids': 8,
  'adgate.impressions': 8,
  'adgate.clicks': 8,
  'adgate.conversions': 8,
  'adgate.dlq': 2,
}

interface Build {
  runDecodeTask(task: unknown): { outcomes: { events: number; error: unknown }[] }
  encodeEvents(type: EventType, events: unknown[], encoding: Encoding): Buffer
  generateEvents(type: EventType, count: number, seed: number): { event_time: number }[]
  compileRules(rules: unknown): unknown
  useRules(rules: unknown): void
  loadRules(path: string): unknown
  defaultRulesPath(): string
}

async function load(root: string, rules: boolean): Promise<Build> {
  const modules = ['workers/decode-task.js', 'generator/encode.js', 'generator/funnel.js']
  if (rules) modules.push('quality/rules.js', 'quality/rules-channel.js', 'quality/rules-file.js')
  return Object.assign({}, ...(await Promise.all(modules.map((m) => import(new URL(m, root).href)))))
}

export async function decodeTaskWorkload(spec: DecodeTaskSpec): Promise<Workload> {
  const { type = 'impression', encoding = 'json', rules = false } = spec
  const build = await load(spec.root, rules)
  if (rules) build.useRules(build.compileRules(build.loadRules(build.defaultRulesPath())))
  const bodies = Array.from({ length: spec.bodies }, (_, i) => {
    const events = build.generateEvents(type, spec.eventsPerBody, 5000 + i)
    return {
      body: build.encodeEvents(type, events, encoding),
      // Fresh events, as live traffic: the freshness rules see times near the ingest time.
      ingestTime: events.at(-1)!.event_time + 1000,
    }
  })
  const length = bodies.reduce((n, b) => n + b.body.length, 0)
  const bytes = Buffer.concat(bodies.map((b) => b.body))
  let offset = 0
  const metas = bodies.map(({ body, ingestTime }, i) => {
    const meta = {
      buffer: 0,
      offset,
      length: body.length,
      type,
      encoding,
      contentEncoding: 'identity',
      source: 'bench',
      requestId: `bench-${i}`,
      ingestTime,
    }
    offset += body.length
    return meta
  })
  const events = spec.bodies * spec.eventsPerBody
  const run = () => {
    // A fresh buffer per task, as the pool hands the worker one. `buffers` is the task's shape since
    // d35e42f, `buffer` the one before it: each build reads its own and ignores the other.
    const buffer = new ArrayBuffer(length)
    new Uint8Array(buffer).set(bytes)
    const r = build.runDecodeTask({
      buffers: [buffer],
      buffer,
      bodies: metas,
      maxBytes: 1 << 26,
      maxEvents: spec.eventsPerBody,
      budgetMs: 500,
      partitions: PARTITIONS,
    })
    let accepted = 0
    for (const o of r.outcomes) accepted += o.error === null ? o.events : 0
    return accepted
  }
  const accepted = run()
  if (accepted !== events) throw new Error(`${spec.name}: ${accepted} of ${events} events accepted`)
  return { name: spec.name, events, bytes: length, fn: run }
}
