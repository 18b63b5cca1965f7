// The gateway's routes, admission, replies, delivery and decode pool, against the TypeScript source
// without a socket or a broker (test/support/inject.ts, test/support/fake-gateway.ts). The same
// behaviour is tested end to end against real Kafka in roundtrip.test.ts, status.test.ts and
// outage.test.ts; here each answer is reached in milliseconds and can be provoked exactly.
import { afterEach, describe, expect, it } from 'vitest'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { type FakeGateway, fakeGateway } from '../support/fake-gateway.js'
import { type InjectRequest, inject } from '../support/inject.js'

const KEYS = 'ssp-a:secret-a-123:click|impression,ssp-b:secret-b-123:bid'

let gw: FakeGateway | null = null
afterEach(async () => {
  await gw?.close()
  gw = null
})

function start(env: Record<string, string> = {}, options: { spool?: boolean } = {}): FakeGateway {
  gw = fakeGateway(env, options)
  return gw
}

const clicks = (n: number, seed = 1) => encodeEvents('click', generateEvents('click', n, seed), 'ndjson')

function post(path: string, body: string | Buffer, more: Partial<InjectRequest> = {}): InjectRequest {
  return {
    method: 'POST',
    url: path,
    body,
    ...more,
    headers: { 'content-type': 'application/x-ndjson', 'x-request-id': 'req-1', ...more.headers },
  }
}

function errorCode(body: string): string {
  return (JSON.parse(body) as { error: { code: string } }).error.code
}

describe('routes', () => {
  it('answers 404 NOT_FOUND for an unknown path, naming it', async () => {
    const g = start()
    const r = await inject(g.app, { url: '/v1/nothing' })
    expect(r.status).toBe(404)
    expect(JSON.parse(r.body).error).toMatchObject({ code: 'NOT_FOUND', detail: 'no route GET /v1/nothing' })
  })

  it('answers 405 with Allow: POST for another method on an event route', async () => {
    const g = start()
    const r = await inject(g.app, { method: 'GET', url: '/v1/clicks' })
    expect(r.status).toBe(405)
    expect(r.headers.allow).toBe('POST')
    expect(errorCode(r.body)).toBe('METHOD_NOT_ALLOWED')
  })

  it('answers /healthz, and /readyz by whether events can be made durable', async () => {
    const g = start({}, { spool: false })
    expect((await inject(g.app, { url: '/healthz' })).status).toBe(200)
    expect(JSON.parse((await inject(g.app, { url: '/readyz' })).body)).toMatchObject({
      ready: true,
      kafka: true,
    })
    g.sink.ready = false
    const r = await inject(g.app, { url: '/readyz' })
    expect(r.status).toBe(503)
    expect(JSON.parse(r.body)).toMatchObject({ ready: false, kafka: false, spool: null })
  })
})

describe('admission: refused from the headers, before the body', () => {
  const env = { ADGATE_API_KEYS: KEYS }

  it('401 MISSING_API_KEY with WWW-Authenticate, and the connection closed (the body is unread)', async () => {
    const g = start(env)
    const r = await inject(g.app, post('/v1/clicks', clicks(3)))
    expect(r.status).toBe(401)
    expect(r.headers['www-authenticate']).toBe('Bearer realm="adgate"')
    expect(r.closed).toBe(true)
    expect(JSON.parse(r.body).error).toMatchObject({
      code: 'MISSING_API_KEY',
      detail: 'send X-API-Key: <secret> or Authorization: Bearer <secret>',
    })
  })

  it('401 UNKNOWN_API_KEY; 403 EVENT_TYPE_NOT_ALLOWED for a type the key may not send', async () => {
    const g = start(env)
    const unknown = await inject(
      g.app,
      post('/v1/clicks', clicks(3), { headers: { 'x-api-key': 'nope-nope-nope' } }),
    )
    expect(unknown.status).toBe(401)
    expect(errorCode(unknown.body)).toBe('UNKNOWN_API_KEY')
    const forbidden = await inject(
      g.app,
      post('/v1/clicks', clicks(3), { headers: { authorization: 'Bearer secret-b-123' } }),
    )
    expect(forbidden.status).toBe(403)
    expect(JSON.parse(forbidden.body).error).toMatchObject({
      code: 'EVENT_TYPE_NOT_ALLOWED',
      detail: 'this key may not send click events',
    })
    expect(g.sink.records).toEqual([])
  })

  it('the WebSocket upgrade refuses a key with the same code and text as POST', async () => {
    const g = start(env)
    const upgrade = {
      url: '/v1/stream',
      headers: {
        upgrade: 'websocket',
        connection: 'Upgrade',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    }
    const refused = await inject(g.app, upgrade)
    const posted = await inject(g.app, post('/v1/clicks', clicks(1)))
    expect(refused.status).toBe(401)
    expect(JSON.parse(refused.body).error).toEqual(JSON.parse(posted.body).error)
    const ok = await inject(g.app, {
      ...upgrade,
      headers: { ...upgrade.headers, 'x-api-key': 'secret-a-123' },
    })
    expect(ok.status).toBe(101)
    expect(ok.upgraded).toMatchObject({ principal: { name: 'ssp-a' } })
  })

  it('429 RATE_LIMITED with Retry-After once a key is over its rate', async () => {
    const g = start({ ADGATE_API_KEYS: 'ssp-a:secret-a-123:click:1' })
    const send = () =>
      inject(g.app, post('/v1/clicks', clicks(1), { headers: { 'x-api-key': 'secret-a-123' } }))
    expect((await send()).status).toBe(200)
    const r = await send()
    expect(r.status).toBe(429)
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0)
    expect(JSON.parse(r.body).error.detail).toBe('key ssp-a is over its rate')
  })

  it('415 for a content type the gateway does not read', async () => {
    const g = start()
    const r = await inject(
      g.app,
      post('/v1/clicks', clicks(1), { headers: { 'content-type': 'text/plain' } }),
    )
    expect(r.status).toBe(415)
    expect(errorCode(r.body)).toBe('UNSUPPORTED_CONTENT_TYPE')
  })

  it('413 BODY_TOO_LARGE from a declared Content-Length over the limit, before any body byte', async () => {
    const g = start({ ADGATE_MAX_BODY_BYTES: '4096' })
    const r = await inject(g.app, post('/v1/clicks', Buffer.alloc(5000, 'x')))
    expect(r.status).toBe(413)
    expect(r.closed).toBe(true)
    expect(JSON.parse(r.body).error.detail).toBe('Content-Length 5000 is over the limit of 4096 bytes')
  })

  it('413 BODY_TOO_LARGE when a body of unknown length grows over the limit chunk by chunk', async () => {
    const g = start({ ADGATE_MAX_BODY_BYTES: '4096' })
    const r = await inject(
      g.app,
      post('/v1/clicks', Buffer.alloc(5000, 'x'), { noContentLength: true, chunk: 1000 }),
    )
    expect(r.status).toBe(413)
    expect(r.closed).toBe(true)
    expect(JSON.parse(r.body).error.detail).toBe('the body is over the limit of 4096 bytes')
    expect(g.routes.inFlight()).toBe(0)
  })

  it('503 DRAINING once the gateway is shutting down', async () => {
    const g = start()
    g.ingest.startDraining()
    const r = await inject(g.app, post('/v1/clicks', clicks(1)))
    expect(r.status).toBe(503)
    expect(r.headers['retry-after']).toBe('1')
    expect(errorCode(r.body)).toBe('DRAINING')
  })
})

describe('replies: decoded by the real decode task, durable before the answer', () => {
  it('200 with every event acknowledged by Kafka, the body read in chunks', async () => {
    const g = start()
    const r = await inject(g.app, post('/v1/clicks', clicks(40), { chunk: 512 }))
    expect(r.status).toBe(200)
    expect(JSON.parse(r.body)).toEqual({ accepted: 40, rejected: 0, request_id: 'req-1' })
    expect(r.headers['x-request-id']).toBe('req-1')
    const onTopic = g.sink.records.filter((b) => b.topic === 'adgate.clicks')
    expect(onTopic.reduce((n, b) => n + b.records, 0)).toBe(40)
  })

  it('207 for a mixed body: the valid events durable, the invalid ones listed and dead-lettered', async () => {
    const g = start()
    const lines = clicks(3).toString().trimEnd().split('\n')
    lines.splice(1, 0, '{"click_id": 42}')
    const r = await inject(g.app, post('/v1/clicks', `${lines.join('\n')}\n`))
    expect(r.status).toBe(207)
    const body = JSON.parse(r.body)
    expect(body).toMatchObject({ accepted: 3, rejected: 1, request_id: 'req-1' })
    expect(body.errors).toHaveLength(1)
    expect(body.errors[0]).toMatchObject({ index: 1 })
    // The worker writes the errors' JSON; the bytes are what JSON.stringify made of the whole body.
    const { accepted, rejected, errors, request_id } = body
    expect(r.body).toBe(JSON.stringify({ accepted, rejected, errors, request_id }))
    const sum = (topic: string) =>
      g.sink.records.filter((b) => b.topic === topic).reduce((n, b) => n + b.records, 0)
    expect(sum('adgate.clicks')).toBe(3)
    expect(sum('adgate.dlq')).toBe(1)
  })

  it('400 ALL_EVENTS_INVALID when no event of the body is valid', async () => {
    const g = start()
    const r = await inject(g.app, post('/v1/clicks', '{"click_id": 1}\n{"click_id": 2}\n'))
    expect(r.status).toBe(400)
    const body = JSON.parse(r.body)
    expect(body).toMatchObject({
      error: { code: 'ALL_EVENTS_INVALID' },
      accepted: 0,
      rejected: 2,
    })
    expect(body.errors.map((e: { index: number }) => e.index)).toEqual([0, 1])
    const { error, request_id, accepted, rejected, errors } = body
    expect(r.body).toBe(JSON.stringify({ error, request_id, accepted, rejected, errors }))
  })
})

describe('delivery: Kafka down, slow or failing', () => {
  it('spools when Kafka is down, and answers 200 once the spool holds the events', async () => {
    const g = start()
    g.sink.ready = false
    const r = await inject(g.app, post('/v1/clicks', clicks(10)))
    expect(r.status).toBe(200)
    expect(g.sink.records).toEqual([])
    expect(g.spool!.records).toBe(10)
    expect(JSON.parse((await inject(g.app, { url: '/readyz' })).body)).toMatchObject({
      ready: true,
      kafka: false,
    })
  })

  it('spools what Kafka has not acknowledged within ADGATE_SPOOL_AFTER_MS', async () => {
    const g = start({ ADGATE_SPOOL_AFTER_MS: '50' })
    g.sink.mode = 'hang'
    const r = await inject(g.app, post('/v1/clicks', clicks(5)))
    expect(r.status).toBe(200)
    expect(g.spool!.records).toBe(5)
  })

  it('503 NOT_DURABLE with Retry-After when Kafka fails a send and there is no spool', async () => {
    const g = start({ ADGATE_SPOOL_MAX_BYTES: '0' }, { spool: false })
    g.sink.mode = 'fail'
    const r = await inject(g.app, post('/v1/clicks', clicks(5)))
    expect(r.status).toBe(503)
    expect(r.headers['retry-after']).toBe('1')
    expect(errorCode(r.body)).toBe('NOT_DURABLE')
  })

  it('503 before the body is read when Kafka is down and the spool is full (backpressure)', async () => {
    const g = start({ ADGATE_SPOOL_MAX_BYTES: '1MiB' })
    g.sink.ready = false
    g.spool!.bytes = g.spool!.maxBytes
    const r = await inject(g.app, post('/v1/clicks', clicks(5)))
    expect(r.status).toBe(503)
    expect(r.closed).toBe(true)
    expect(errorCode(r.body)).toBe('NOT_DURABLE')
    expect(JSON.parse((await inject(g.app, { url: '/readyz' })).body)).toMatchObject({
      ready: false,
      spool: { full: true },
    })
  })
})

describe('the decode pool', () => {
  it('503 WORKER_FAILED when the worker running the task dies; the next request is served', async () => {
    const g = start()
    g.crashNextTask()
    const failed = await inject(g.app, post('/v1/clicks', clicks(2)))
    expect(failed.status).toBe(503)
    expect(errorCode(failed.body)).toBe('WORKER_FAILED')
    const next = await inject(g.app, post('/v1/clicks', clicks(2)))
    expect(next.status).toBe(200)
  })
})

describe('metrics', () => {
  it('counts each answer by route and status on /metrics', async () => {
    const g = start()
    await inject(g.app, post('/v1/clicks', clicks(2)))
    await inject(g.app, { url: '/v1/clicks' })
    const text = (await inject(g.app, { url: '/metrics' })).body
    expect(text).toMatch(/adgate_http_requests_total\{route="\/v1\/clicks",status="200"\} 1/)
    expect(text).toMatch(/adgate_http_requests_total\{route="\/v1\/clicks",status="405"\} 1/)
  })

  it('reads what their owners keep at scrape time: deliveries, readiness, the spool', async () => {
    const g = start()
    await inject(g.app, post('/v1/clicks', clicks(3)))
    g.sink.ready = false
    await inject(g.app, post('/v1/clicks', clicks(4)))
    const text = (await inject(g.app, { url: '/metrics' })).body
    expect(text).toMatch(/adgate_deliveries_total\{destination="kafka"\} 1\n/)
    expect(text).toMatch(/adgate_deliveries_total\{destination="spool"\} 1\n/)
    expect(text).toMatch(/adgate_delivered_records_total\{destination="spool"\} 4\n/)
    expect(text).toMatch(/adgate_spool_events 4\n/)
    expect(text).toMatch(/adgate_kafka_ready 0\n/)
    expect(text).toMatch(/adgate_ready 1\n/)
    g.ingest.startDraining()
    expect((await inject(g.app, { url: '/metrics' })).body).toMatch(/adgate_ready 0\n/)
  })
})
