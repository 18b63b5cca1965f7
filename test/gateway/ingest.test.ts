// gateway/ingest.ts: a client's bodies are charged at admission, so a burst from a client with no
// debt yet cannot all be decoded on the shared workers before its first charge lands (issue 15).
// The pool is a fake that holds every body until the test answers it.
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../config/logger.js'
import type { Delivery } from '../../gateway/delivery.js'
import { IngestService } from '../../gateway/ingest.js'
import { createGatewayMetrics } from '../../gateway/metrics.js'
import { RefusedWork } from '../../gateway/refused-work.js'
import type { BodyOutcome } from '../../workers/decode-task.js'
import type { DecodePool, DecodeReply, DecodeRequest } from '../../workers/pool.js'

/** Decodes nothing: records each request and answers it when told. */
class HeldPool {
  readonly held: { request: DecodeRequest; answer: (outcome: BodyOutcome) => void }[] = []

  decode(request: DecodeRequest): Promise<DecodeReply> {
    return new Promise((resolve) =>
      this.held.push({
        request,
        answer: (outcome) =>
          resolve({ outcome, rejectsJson: null, task: { buffer: Buffer.alloc(0), batches: [] } }),
      }),
    )
  }

  /** Requests decoded on the shared workers (not apart, on the probation lane). */
  get shared(): number {
    return this.held.filter((h) => h.request.probation === undefined).length
  }
}

const DELIVERY = { ready: true, unavailable: null, deliver: async () => new Map() } as unknown as Delivery

function service(pool: HeldPool): IngestService {
  return new IngestService(
    pool as unknown as DecodePool,
    DELIVERY,
    createGatewayMetrics(),
    createLogger('silent', 'gateway'),
    null,
    new RefusedWork(50),
  )
}

function body(client: string, i: number) {
  return {
    body: Buffer.alloc(10_000, 32), // estimated at 30 ms for a client not seen yet: under the 50 ms share alone
    type: 'impression' as const,
    encoding: 'ndjson' as const,
    contentEncoding: 'identity' as const,
    source: client,
    client,
    requestId: `${client}-${i}`,
    ingestTime: Date.now(),
  }
}

function outcome(valid: boolean, cpuMs: number): BodyOutcome {
  return {
    error: valid ? null : { code: 'MALFORMED_BODY', detail: 'not NDJSON' },
    events: valid ? 100 : 0,
    rejected: 0,
    rejects: null,
    flagged: 0,
    ruleRejects: 0,
    cpuMs,
  }
}

describe('IngestService: refused work charged at admission', () => {
  it('a burst from a client with no debt: only its first body goes to the shared workers, the rest apart', async () => {
    const pool = new HeldPool()
    const ingest = service(pool)
    const answers = Array.from({ length: 8 }, (_, i) => ingest.ingest(body('noisy', i)))
    await Promise.resolve()
    expect(pool.held.length).toBe(8)
    expect(pool.shared).toBe(1) // without the estimate at admission: all 8 (no charge had landed)
    for (const h of pool.held) h.answer(outcome(false, 60))
    expect((await Promise.all(answers)).map((r) => r.status)).toEqual(Array(8).fill(400))
  })

  it('a client whose bodies were valid sends its bursts to the shared workers', async () => {
    const pool = new HeldPool()
    const ingest = service(pool)
    const first = ingest.ingest(body('valid', 0))
    await Promise.resolve()
    pool.held[0]!.answer(outcome(true, 0.2))
    expect((await first).status).toBe(200)
    const answers = Array.from({ length: 8 }, (_, i) => ingest.ingest(body('valid', i + 1)))
    await Promise.resolve()
    expect(pool.held.length).toBe(9)
    expect(pool.shared).toBe(9)
    for (const h of pool.held.slice(1)) h.answer(outcome(true, 0.2))
    expect((await Promise.all(answers)).map((r) => r.status)).toEqual(Array(8).fill(200))
  })
})
