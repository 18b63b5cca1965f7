// GET /v1/stream: batches over one WebSocket, each acknowledged by sequence number once durable.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import WebSocket from 'ws'
import type { Encoding } from '../../decoders/result.js'
import { EVENT_INFO, type EventType } from '../../events/catalog.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { endOffsets, readFrom } from '../support/consume.js'
import { type RunningGateway, startGateway } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')
const KEY = 'stream-secret-01'
const CLICKS_ONLY = 'clicks-secret-01'

interface Ack {
  seq: number | null
  status: number
  accepted?: number
  error?: { code: string }
}

/** A connected client that collects acks. */
async function open(
  url: string,
  key?: string,
): Promise<{ ws: WebSocket; acks: Ack[]; next: (n: number) => Promise<Ack[]> }> {
  const ws = new WebSocket(url, { headers: key ? { 'x-api-key': key } : {} })
  const acks: Ack[] = []
  const waiters: { n: number; resolve: (a: Ack[]) => void }[] = []
  ws.on('message', (data) => {
    acks.push(JSON.parse(data.toString()))
    for (const w of waiters.splice(0)) {
      if (acks.length >= w.n) w.resolve(acks.slice())
      else waiters.push(w)
    }
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
  })
  const next = (n: number) =>
    new Promise<Ack[]>((resolve) => {
      if (acks.length >= n) resolve(acks.slice())
      else waiters.push({ n, resolve })
    })
  return { ws, acks, next }
}

function frame(seq: number, type: EventType, encoding: Encoding, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${JSON.stringify({ seq, type, encoding })}\n`), body])
}

describe.skipIf(brokers.length === 0)('WebSocket stream', () => {
  let gw: RunningGateway
  let wsUrl: string
  let seed = 90_000 + (Date.now() % 100_000)

  beforeAll(async () => {
    gw = await startGateway(brokers, {
      ADGATE_API_KEYS: `streamer:${KEY}:*,clicker:${CLICKS_ONLY}:click`,
      ADGATE_WS_MAX_IN_FLIGHT: '1',
      ADGATE_FAULT_INJECTION: 'on',
      ADGATE_DECODE_TIMEOUT_MS: '1500',
    })
    wsUrl = `ws://127.0.0.1:${gw.port}/v1/stream`
  })
  afterAll(async () => {
    expect(await gw.stop()).toBe(0)
  })

  it('refuses the upgrade without a valid key (401)', async () => {
    for (const key of [undefined, 'wrong-key-123']) {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(wsUrl, { headers: key ? { 'x-api-key': key } : {} })
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('open', () => resolve(101))
      })
      expect(status).toBe(401)
    }
  })

  it('acks each batch by seq once its events are in Kafka', async () => {
    const batches: [EventType, Encoding][] = [
      ['impression', 'ndjson'],
      ['click', 'csv'],
      ['bid', 'avro'],
      ['conversion', 'json'],
    ]
    const topics = batches.map(([t]) => EVENT_INFO[t].topic)
    const from = await endOffsets(brokers, topics)
    const { ws, next } = await open(wsUrl, KEY)
    const ids = new Set<unknown>()
    // In-flight limit is 1 here: send the next batch after each ack.
    for (let i = 0; i < batches.length; i++) {
      const [type, encoding] = batches[i]!
      const events = generateEvents(type, 20, seed++)
      for (const e of events) ids.add(e.event_id)
      ws.send(frame(i + 1, type, encoding, encodeEvents(type, events, encoding)))
      const acks = await next(i + 1)
      expect(acks[i]).toMatchObject({ seq: i + 1, status: 200, accepted: 20 })
    }
    ws.close()
    const found = (
      await readFrom(brokers, from, (rs) => rs.filter((r) => ids.has(r.value.event_id)).length >= ids.size)
    ).filter((r) => ids.has(r.value.event_id))
    expect(found).toHaveLength(80)
  })

  it('answers garbage frames with a 400 ack and keeps the connection', async () => {
    const { ws, next } = await open(wsUrl, KEY)
    ws.send(Buffer.from('no header line at all'))
    ws.send('{"seq": "one"}\n{}')
    ws.send(Buffer.from([0xff, 0xfe, 0x0a, 0x00]))
    const acks = await next(3)
    expect(acks.map((a) => [a.seq, a.status, a.error?.code])).toEqual([
      [null, 400, 'MALFORMED_BODY'],
      [null, 400, 'MALFORMED_BODY'],
      [null, 400, 'MALFORMED_BODY'],
    ])
    const events = generateEvents('impression', 5, seed++)
    ws.send(frame(9, 'impression', 'json', encodeEvents('impression', events, 'json')))
    expect((await next(4))[3]).toMatchObject({ seq: 9, status: 200, accepted: 5 })
    ws.close()
  })

  it('checks the key per event type (403 ack) and bounds unacknowledged batches (503 ack)', async () => {
    const clicker = await open(wsUrl, CLICKS_ONLY)
    clicker.ws.send(
      frame(
        1,
        'impression',
        'json',
        encodeEvents('impression', generateEvents('impression', 1, seed++), 'json'),
      ),
    )
    expect((await clicker.next(1))[0]).toMatchObject({
      seq: 1,
      status: 403,
      error: { code: 'EVENT_TYPE_NOT_ALLOWED' },
    })
    clicker.ws.close()

    // The first batch hangs in its worker (fault injection); the second exceeds the limit of 1.
    expect((await fetch(`${gw.url}/_faults/worker?mode=hang`, { method: 'POST' })).status).toBe(200)
    const { ws, next } = await open(wsUrl, KEY)
    ws.send(
      frame(
        1,
        'impression',
        'json',
        encodeEvents('impression', generateEvents('impression', 2, seed++), 'json'),
      ),
    )
    ws.send(
      frame(
        2,
        'impression',
        'json',
        encodeEvents('impression', generateEvents('impression', 2, seed++), 'json'),
      ),
    )
    const acks = await next(2)
    const bySeq = new Map(acks.map((a) => [a.seq, a]))
    expect(bySeq.get(2)).toMatchObject({ status: 503, error: { code: 'NOT_DURABLE' } })
    expect(bySeq.get(1)).toMatchObject({ status: 503, error: { code: 'WORKER_FAILED' } })
    ws.close()
  })
})
