// Issue 16: a starting gateway says ready only once it is warm (ADGATE_WARMUP_MS), and nothing it
// decodes to warm up reaches Kafka. Real gateway, real broker.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { DLQ_TOPIC, EVENT_INFO, EVENT_TYPES } from '../../events/catalog.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { endOffsets, type ReadRecord, readFrom } from '../support/consume.js'
import { post, type RunningGateway, startGateway } from '../support/gateway.js'

const brokers = inject('kafkaBrokers')
const PARTITIONS = 4
const TOPICS = [...EVENT_TYPES.map((t) => EVENT_INFO[t].topic), DLQ_TOPIC]

interface Ready {
  status: number
  warming: boolean
}

describe.skipIf(brokers.length === 0)('start-up warm-up', () => {
  let gw: RunningGateway
  const answers: Ready[] = []
  let records: ReadRecord[] = []
  const run = `warm-${Date.now()}`
  const markers = new Set<string>()

  beforeAll(async () => {
    const from = await endOffsets(brokers, TOPICS)
    gw = await startGateway(brokers, {
      ADGATE_WARMUP_MS: '60000',
      ADGATE_TOPIC_PARTITIONS: String(PARTITIONS),
    })
    // /readyz from the moment it listens until it says ready.
    for (;;) {
      const res = await fetch(`${gw.url}/readyz`)
      const body = (await res.json()) as { warming: boolean }
      answers.push({ status: res.status, warming: body.warming })
      if (res.status === 200) break
      await new Promise((r) => setTimeout(r, 20))
    }
    // Markers after ready, on every partition of every topic: once each is read back, everything
    // written to that partition before it (a leaked warm-up batch) was read too.
    for (const type of EVENT_TYPES) {
      const events = generateEvents(type, 40, 900)
      for (const [i, e] of events.entries()) {
        const id = `${run}-${type}-${i}`
        e.event_id = id
        markers.add(id)
      }
      expect(
        (
          await post(`${gw.url}/v1/${EVENT_INFO[type].route}`, encodeEvents(type, events, 'json'), {
            'content-type': 'application/json',
          })
        ).status,
      ).toBe(200)
    }
    // Dead letters go round robin over the DLQ's partitions: one body of PARTITIONS invalid events.
    const bad = Array.from({ length: PARTITIONS }, () => ({ event_id: 'x' }))
    const dead = await post(`${gw.url}/v1/impressions`, JSON.stringify(bad), {
      'content-type': 'application/json',
      'x-request-id': run,
    })
    expect(dead.status).toBe(400)
    records = await readFrom(brokers, from, (rs) => {
      const seen = rs.filter((r) => markers.has(r.value.event_id as string)).length
      return seen === markers.size && rs.filter((r) => r.value.request_id === run).length === PARTITIONS
    })
  }, 120_000)

  afterAll(async () => {
    if (gw) expect(await gw.stop()).toBe(0)
  })

  it('/readyz says 503 {warming: true} until the warm-up has ended, then 200', () => {
    expect(answers[0], JSON.stringify(answers)).toMatchObject({ status: 503, warming: true })
    for (const a of answers.slice(0, -1)) expect(a).toMatchObject({ status: 503, warming: true })
    expect(answers.at(-1)).toMatchObject({ status: 200, warming: false })
    expect(gw.logs()).toMatch(/"complete":true[^\n]*"kafka":true[^\n]*"msg":"warmed up: ready"/)
  })

  it('the warm-up time is a metric', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text()
    const seconds = Number(/^adgate_warm_up_seconds (\S+)$/m.exec(text)?.[1])
    expect(seconds).toBeGreaterThan(0)
    expect(text).toMatch(/^adgate_ready 1$/m)
  })

  it('nothing the warm-up decoded reaches Kafka: every partition read past markers posted after ready', () => {
    for (const topic of TOPICS) {
      const marked = records.filter(
        (r) => r.topic === topic && (markers.has(r.value.event_id as string) || r.value.request_id === run),
      )
      expect(new Set(marked.map((r) => r.partition)).size, topic).toBe(PARTITIONS)
    }
    const leaked = records.filter(
      (r) =>
        r.headers['adgate.source'] === 'warm-up' ||
        r.value.source === 'warm-up' ||
        r.value.request_id === 'warm-up',
    )
    expect(leaked).toEqual([])
  })
})
