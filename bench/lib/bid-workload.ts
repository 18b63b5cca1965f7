import type { BodyOptions } from '../../decoders/decode.js'
import type { Decoded, Encoding, Undecodable } from '../../decoders/result.js'
import type { TranscodeResult } from '../../decoders/transcode.js'
import type { Event } from '../../generator/events.js'
import type { Workload } from './harness.js'

/**
 * Bid bodies decoded the way the gateway's workers decode them — Avro OCF by decodeBody, JSON and
 * NDJSON straight to wire-format values by transcodeBody — by the build under `root` (a dist/
 * directory as a file URL ending in '/': this build's, or an earlier commit's, see
 * baseline-build.ts). Each build decodes the bids its own generator makes from the same seeds: bid
 * v1 builds the v1 record, later builds the OpenRTB 2.6 envelope. A factory for measureIsolated,
 * so every build runs in a thread of its own with its own modules.
 */
export interface BidWorkloadSpec {
  readonly name: string
  readonly root: string
  readonly encoding: Encoding
}

export const BID_BODIES = 4
export const BIDS_PER_BODY = 1000

interface Build {
  decodeBody(body: Buffer, options: BodyOptions): Decoded | Undecodable
  transcodeBody(body: Buffer, options: BodyOptions): TranscodeResult | null
  encodeEvents(type: 'bid', events: Event[], encoding: Encoding): Buffer
  generateEvents(type: 'bid', count: number, seed: number): Event[]
}

async function load(root: string): Promise<Build> {
  const [decode, encode, funnel] = await Promise.all([
    import(new URL('decoders/decode.js', root).href),
    import(new URL('generator/encode.js', root).href),
    import(new URL('generator/funnel.js', root).href),
  ])
  return { ...decode, ...encode, ...funnel } as Build
}

export async function bidWorkload(spec: BidWorkloadSpec): Promise<Workload> {
  const build = await load(spec.root)
  const options: BodyOptions = {
    type: 'bid',
    encoding: spec.encoding,
    contentEncoding: 'identity',
    maxBytes: 1 << 26,
    maxEvents: BIDS_PER_BODY,
    ingestTime: 1_795_000_000_000,
    source: 'bench',
  }
  const bodies = Array.from({ length: BID_BODIES }, (_, i) =>
    build.encodeEvents('bid', build.generateEvents('bid', BIDS_PER_BODY, 1000 + i), spec.encoding),
  )
  const accepted = (body: Buffer): number => {
    if (spec.encoding === 'avro') {
      const r = build.decodeBody(body, options)
      if (!r.ok) throw new Error(`${spec.name}: ${r.error.code}: ${r.error.detail}`)
      if (r.rejects.length > 0) throw new Error(`${spec.name}: rejected ${r.rejects[0]!.reason}`)
      return r.events.length
    }
    const r = build.transcodeBody(body, options)!
    if (!r.ok) throw new Error(`${spec.name}: ${r.error.code}: ${r.error.detail}`)
    if (r.rejects.length > 0) throw new Error(`${spec.name}: rejected ${r.rejects[0]!.reason}`)
    return r.count
  }
  // Sanity: every generated bid is accepted, by every build.
  for (const body of bodies) {
    const n = accepted(body)
    if (n !== BIDS_PER_BODY) throw new Error(`${spec.name}: ${n} of ${BIDS_PER_BODY} bids accepted`)
  }
  let i = 0
  return {
    name: spec.name,
    events: BIDS_PER_BODY,
    bytes: bodies.reduce((n, b) => n + b.length, 0) / bodies.length,
    fn: () => accepted(bodies[i++ % bodies.length]!),
  }
}
