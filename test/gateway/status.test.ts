// Every row of the contract's status table, provoked against a real gateway and broker.
// After each: the gateway still serves.
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { gzipSync } from 'node:zlib'
import { describe, expect, inject, it } from 'vitest'
import { writeContainer } from '../../decoders/avro-container.js'
import { DLQ_TOPIC } from '../../events/catalog.js'
import { ERRORS } from '../../events/errors.js'
import { EVENT_SCHEMAS } from '../../events/schemas.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { endOffsets, readFrom } from '../support/consume.js'
import { gatewayForBlock, post } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')
const SSP = 'ssp-secret-0001'
const TRACKER = 'tracker-secret-01'
const SLOW = 'slow-secret-0001'
const MAX_BODY = 64 * 1024

describe.skipIf(brokers.length === 0)('status codes', () => {
  let seed = 7000 + (Date.now() % 100_000)
  const impressions = (n: number) => generateEvents('impression', n, seed++)
  const json = (body: unknown) => JSON.stringify(body)
  const send = (path: string, body: Buffer | string, headers: Record<string, string> = {}, key = SSP) =>
    post(`${gw.url}${path}`, body, { 'content-type': 'application/json', 'x-api-key': key, ...headers })

  const gw = gatewayForBlock(brokers, {
    ADGATE_API_KEYS: `ssp:${SSP}:bid|impression,tracker:${TRACKER}:click|conversion,slow:${SLOW}:*:1`,
    ADGATE_MAX_BODY_BYTES: String(MAX_BODY),
    ADGATE_MAX_EVENTS: '50',
    ADGATE_BODY_TIMEOUT_MS: '1000',
    ADGATE_FAULT_INJECTION: 'on',
    ADGATE_DECODE_TIMEOUT_MS: '1000',
  })

  /** Raw HTTP/1.1 over a socket: what the server answers before closing (or after 5 s). */
  function raw(request: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(gw.port, '127.0.0.1')
      let data = ''
      const timer = setTimeout(() => socket.destroy(), 5000)
      socket.on('data', (d) => {
        data += d.toString()
      })
      socket.on('close', () => {
        clearTimeout(timer)
        resolve(data)
      })
      socket.on('error', (err: NodeJS.ErrnoException) =>
        err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
      )
      socket.write(request)
    })
  }

  async function stillServes(): Promise<void> {
    const res = await send('/v1/impressions', json(impressions(3)))
    expect(res.status, JSON.stringify(res.body)).toBe(200)
  }

  function expectError(
    res: { status: number; body: Record<string, unknown>; headers: Headers },
    code: keyof typeof ERRORS,
  ) {
    expect(res.status, JSON.stringify(res.body)).toBe(ERRORS[code].status)
    expect((res.body.error as { code: string }).code).toBe(code)
    expect(res.headers.get('x-request-id')).toBeTruthy()
  }

  it('200: every event accepted and durable', async () => {
    const res = await send('/v1/impressions', json(impressions(10)))
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ accepted: 10, rejected: 0 })
  })

  it('207: rejected events listed with index, field and reason, and dead-lettered with their raw bytes', async () => {
    const events = impressions(6)
    ;(events[2] as Record<string, unknown>).cost_micros = -5
    delete (events[4] as Record<string, unknown>).campaign_id
    const from = await endOffsets(brokers, [DLQ_TOPIC])
    const res = await send('/v1/impressions', json(events), { 'x-request-id': `dlq-${seed}` })
    expect(res.status).toBe(207)
    expect(res.body).toMatchObject({
      accepted: 4,
      rejected: 2,
      errors: [
        { index: 2, field: 'cost_micros', reason: 'must be ≥ 0, got -5' },
        { index: 4, field: 'campaign_id', reason: 'is required' },
      ],
    })
    const dead = (
      await readFrom(
        brokers,
        from,
        (rs) => rs.filter((r) => r.value.request_id === `dlq-${seed}`).length >= 2,
      )
    ).filter((r) => r.value.request_id === `dlq-${seed}`)
    expect(dead.map((d) => d.value.index).sort()).toEqual([2, 4])
    const two = dead.find((d) => d.value.index === 2)!
    expect(two.schemaId).toBe(EVENT_SCHEMAS.impression.id > 0 ? two.schemaId : -1)
    expect(two.value).toMatchObject({
      event_type: 'impression',
      encoding: 'json',
      field: 'cost_micros',
      source: 'ssp',
    })
    expect(JSON.parse((two.value.raw as Buffer).toString())).toMatchObject({
      event_id: events[2]!.event_id,
      cost_micros: -5,
    })
  })

  it.each([
    ['json', 'application/json', '{"event_id": '],
    ['ndjson', 'application/x-ndjson', 'not json\n{also not\n'],
    ['csv', 'text/csv', 'event_id,event_time\n"unterminated,1\n'],
    ['avro', 'application/avro', 'Obj\x01garbage'],
  ])('400: a %s body that cannot be decoded says why', async (_, type, body) => {
    const res = await send('/v1/impressions', body, { 'content-type': type })
    expect(res.status).toBe(400)
    expect((res.body.error as { detail: string }).detail.length).toBeGreaterThan(5)
    await stillServes()
  })

  it('400: every event invalid, with per-event errors', async () => {
    const res = await send('/v1/impressions', json([{ event_id: 'a' }, 5]))
    expectError(res, 'ALL_EVENTS_INVALID')
    const required = ['event_time', 'impression_id', 'auction_id', 'campaign_id', 'cost_micros']
    expect(res.body.errors).toEqual([
      {
        index: 0,
        field: 'event_time',
        reason: 'is required',
        errors: required.map((field) => ({ field, reason: 'is required' })),
      },
      {
        index: 1,
        field: null,
        reason: 'must be an object, got number 5',
        errors: [{ field: null, reason: 'must be an object, got number 5' }],
      },
    ])
  })

  // A lone small body is decoded on the event loop: until negative lengths were refused
  // (decoders/avro-bounds.ts), this 1.3 KB Avro body, a fuzzed container header, sent avsc round
  // its header's map for ever, and the whole gateway with it.
  it('400: an Avro header with a negative length, decoded on the event loop, and the gateway still serves', async () => {
    const body = readFileSync(new URL('../fixtures/avro/fuzzed-header-negative-length.avro', import.meta.url))
    const res = await send('/v1/clicks', body, { 'content-type': 'avro/binary' }, TRACKER)
    expectError(res, 'MALFORMED_BODY')
    expect((res.body.error as { detail: string }).detail).toMatch(/negative length/)
    await stillServes()
  })

  it('401: missing and unknown API keys; 403: a key not allowed this event type', async () => {
    expectError(
      await post(`${gw.url}/v1/impressions`, json(impressions(1)), { 'content-type': 'application/json' }),
      'MISSING_API_KEY',
    )
    expectError(await send('/v1/impressions', json(impressions(1)), {}, 'not-a-real-key'), 'UNKNOWN_API_KEY')
    expectError(await send('/v1/impressions', json(impressions(1)), {}, TRACKER), 'EVENT_TYPE_NOT_ALLOWED')
    const bearer = await post(`${gw.url}/v1/impressions`, json(impressions(1)), {
      'content-type': 'application/json',
      authorization: `Bearer ${SSP}`,
    })
    expect(bearer.status).toBe(200)
  })

  it('413: over the limit by Content-Length, before a byte of body is read', async () => {
    const answer = await raw(
      `POST /v1/impressions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: ${SSP}\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n`,
    )
    expect(answer).toMatch(/^HTTP\/1\.1 413/)
    expect(answer).toContain('BODY_TOO_LARGE')
    await stillServes()
  })

  it('413: over the limit while streaming a chunked body with no Content-Length', async () => {
    const chunk = 'x'.repeat(8192)
    const chunks = Array.from(
      { length: (MAX_BODY * 2) / 8192 },
      () => `${(8192).toString(16)}\r\n${chunk}\r\n`,
    ).join('')
    const answer = await raw(
      `POST /v1/impressions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: ${SSP}\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
    )
    expect(answer).toMatch(/^HTTP\/1\.1 413/)
    await stillServes()
  })

  it('413: too many events, and a body over the limit once decompressed', async () => {
    expectError(await send('/v1/impressions', json(impressions(51))), 'TOO_MANY_EVENTS')
    const bomb = gzipSync(Buffer.alloc(MAX_BODY * 4, 32))
    expectError(await send('/v1/impressions', bomb, { 'content-encoding': 'gzip' }), 'BODY_TOO_LARGE')
    await stillServes()
  })

  it('415: unsupported Content-Type, Content-Encoding and Avro codec', async () => {
    expectError(
      await send('/v1/impressions', '<x/>', { 'content-type': 'application/xml' }),
      'UNSUPPORTED_CONTENT_TYPE',
    )
    expectError(
      await send('/v1/impressions', 'x', { 'content-type': 'text/csv; charset=latin1' }),
      'UNSUPPORTED_CONTENT_TYPE',
    )
    expectError(
      await send('/v1/impressions', 'x', { 'content-encoding': 'br' }),
      'UNSUPPORTED_CONTENT_ENCODING',
    )
    const avro = writeContainer(EVENT_SCHEMAS.impression.type, []).toString('latin1').replace('null', 'zstd')
    const res = await send('/v1/impressions', Buffer.from(avro, 'latin1'), {
      'content-type': 'application/avro',
    })
    expect([400, 415]).toContain(res.status)
  })

  it('429: over the key rate, with Retry-After', async () => {
    const first = await send(
      '/v1/clicks',
      encodeEvents('click', generateEvents('click', 2, seed++), 'csv'),
      { 'content-type': 'text/csv' },
      SLOW,
    )
    expect(first.status).toBe(200)
    const second = await send(
      '/v1/clicks',
      encodeEvents('click', generateEvents('click', 2, seed++), 'csv'),
      { 'content-type': 'text/csv' },
      SLOW,
    )
    expectError(second, 'RATE_LIMITED')
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  })

  it('431: header block over the limit', async () => {
    expectError(
      await send('/v1/impressions', json(impressions(1)), { 'x-padding': 'p'.repeat(20_000) }),
      'HEADERS_TOO_LARGE',
    )
    await stillServes()
  })

  it('404 and 405 for unknown routes and methods', async () => {
    expect((await fetch(`${gw.url}/v2/nothing`)).status).toBe(404)
    const res = await fetch(`${gw.url}/v1/impressions`)
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('POST')
  })

  it('503: a worker that crashes or hangs mid-task fails only its requests, then is replaced', async () => {
    for (const mode of ['crash', 'hang']) {
      expect((await fetch(`${gw.url}/_faults/worker?mode=${mode}`, { method: 'POST' })).status).toBe(200)
      const res = await send('/v1/impressions', json(impressions(5)))
      expectError(res, 'WORKER_FAILED')
      expect(res.headers.get('retry-after')).toBe('1')
      await stillServes()
    }
  })

  it('408: a slow client cannot hold a socket; the connection is closed', async () => {
    const socket = connect(gw.port, '127.0.0.1')
    const answer = await new Promise<string>((resolve, reject) => {
      let data = ''
      socket.on('data', (d) => {
        data += d.toString()
      })
      socket.on('close', () => resolve(data))
      socket.on('error', reject)
      socket.write(
        `POST /v1/impressions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: ${SSP}\r\nContent-Length: 1000\r\n\r\n[{"event_id":`,
      )
      // …and then never sends the rest.
    })
    expect(answer).toMatch(/^HTTP\/1\.1 408/)
    expect(answer).toContain('REQUEST_TIMEOUT')
    await stillServes()
  })

  it('a client trickling its headers (slowloris) is disconnected by the server', {
    timeout: 60_000,
  }, async () => {
    const socket = connect(gw.port, '127.0.0.1')
    const head = `POST /v1/impressions HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(200)}`
    let sent = 0
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(head[sent++ % head.length]!)
    }, 1000)
    // The edge answers 408 and closes a connection whose head does not complete within
    // ADGATE_BODY_TIMEOUT_MS; the test only asserts that the server, not the client, ends it.
    socket.on('error', () => {}) // a write after the server's close (EPIPE) is expected here
    const closedBy = await new Promise<string>((resolve) => {
      socket.on('close', () => resolve('server'))
      setTimeout(() => resolve('nobody'), 45_000)
    })
    clearInterval(trickle)
    socket.destroy()
    expect(closedBy).toBe('server')
    await stillServes()
  })

  it('an upload aborted mid-body is dropped; the gateway keeps serving', async () => {
    for (let i = 0; i < 5; i++) {
      const socket = connect(gw.port, '127.0.0.1')
      await new Promise<void>((resolve) => {
        socket.on('connect', () => {
          socket.write(
            `POST /v1/impressions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-API-Key: ${SSP}\r\nContent-Length: 5000\r\n\r\n[{"ev`,
          )
          socket.destroy()
          resolve()
        })
      })
    }
    await stillServes()
  })

  it('healthz and readyz answer', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200)
    const ready = await fetch(`${gw.url}/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({ ready: true, kafka: true })
  })

  it('metrics count what happened, with bounded labels', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text()
    expect(text).toMatch(/adgate_http_requests_total\{route="\/v1\/impressions",status="200"\} \d+/)
    expect(text).toMatch(/adgate_events_total\{type="impression",encoding="json",outcome="accepted"\} \d+/)
    expect(text).not.toContain(SSP)
  })

  it('logs never contain API key secrets', () => {
    expect(gw.logs()).not.toContain(SSP)
    expect(gw.logs()).not.toContain(TRACKER)
  })
})
