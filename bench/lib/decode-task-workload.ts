import type { Workload } from './harness.js'

/**
 * A worker's decode task (decode, validate, encode, batch: runDecodeTask) over impressions JSON, by
 * the build under `root` (a dist/ directory as a file URL ending in '/': this build's or an
 * earlier commit's, see baseline-build.ts), with the per-request CPU budget set as the gateway sets
 * it. A factory for measureIsolated, so every build runs in a thread of its own with its own modules.
 */
export interface DecodeTaskSpec {
  readonly name: string
  readonly root: string
  readonly bodies: number
  readonly eventsPerBody: number
}

const PARTITIONS = {
  'adgate.bids': 8,
  'adgate.impressions': 8,
  'adgate.clicks': 8,
  'adgate.conversions': 8,
  'adgate.dlq': 2,
}

interface Build {
  runDecodeTask(task: unknown): { outcomes: { events: number; error: unknown }[] }
  encodeEvents(type: 'impression', events: unknown[], encoding: 'json'): Buffer
  generateEvents(type: 'impression', count: number, seed: number): { event_time: number }[]
}

export async function decodeTaskWorkload(spec: DecodeTaskSpec): Promise<Workload> {
  const [task, encode, funnel] = await Promise.all([
    import(new URL('workers/decode-task.js', spec.root).href),
    import(new URL('generator/encode.js', spec.root).href),
    import(new URL('generator/funnel.js', spec.root).href),
  ])
  const build = { ...task, ...encode, ...funnel } as Build
  const bodies = Array.from({ length: spec.bodies }, (_, i) => {
    const events = build.generateEvents('impression', spec.eventsPerBody, 5000 + i)
    return {
      body: build.encodeEvents('impression', events, 'json'),
      ingestTime: events[0]!.event_time + 1000,
    }
  })
  const length = bodies.reduce((n, b) => n + b.body.length, 0)
  const bytes = Buffer.concat(bodies.map((b) => b.body))
  let offset = 0
  const metas = bodies.map(({ body, ingestTime }, i) => {
    const meta = {
      offset,
      length: body.length,
      type: 'impression',
      encoding: 'json',
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
    // A fresh buffer per task, as the pool hands the worker one.
    const buffer = new ArrayBuffer(length)
    new Uint8Array(buffer).set(bytes)
    const r = build.runDecodeTask({
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
