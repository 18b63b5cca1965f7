import WebSocket from 'ws'
import { bodies } from '../../bench/lib/servers.js'
import { percentile } from '../../bench/lib/stats.js'
import { raisedGenerator } from '../generator-priority.js'
import { GeneratorMeter, generatorCheck } from '../lib.js'
import { p99Check, type Scenario, SLO_P99_MS, withGateway } from '../scenario.js'

/** What the streaming clients saw, together: ack latencies, ack statuses, batches sent and never acked. */
interface Tally {
  latencies: number[]
  statuses: Record<string, number>
  sent: number
  lost: number
}

/**
 * One streaming client sending framed batches from `pool` at `rate` per second for `seconds` (open
 * loop: sends never wait for acks; latency = intended send time → ack), then waiting up to 10 s for
 * the last acks.
 */
function streamClient(
  wsUrl: string,
  id: number,
  pool: Buffer[],
  rate: number,
  seconds: number,
  tally: Tally,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(wsUrl)
    const pending = new Map<number, number>()
    let seq = 0
    let timer: NodeJS.Timeout | undefined
    ws.on('error', reject)
    ws.on('message', (data, isBinary) => {
      if (isBinary) return
      const ack = JSON.parse(data.toString()) as { seq: number; status: number }
      const t = pending.get(ack.seq)
      if (t !== undefined) {
        pending.delete(ack.seq)
        tally.latencies.push(performance.now() - t)
      }
      tally.statuses[ack.status] = (tally.statuses[ack.status] ?? 0) + 1
    })
    ws.on('open', () => {
      const started = performance.now()
      timer = setInterval(() => {
        // Catch up to the schedule: how many should have been sent by now.
        const due = Math.floor(((performance.now() - started) / 1000) * rate)
        while (seq < due) {
          const header = Buffer.from(`${JSON.stringify({ seq, type: 'impression', encoding: 'ndjson' })}\n`)
          pending.set(seq, started + (seq / rate) * 1000) // intended send time
          ws.send(Buffer.concat([header, pool[(seq + id) % pool.length]!]), { binary: true })
          seq++
          tally.sent++
        }
        if (performance.now() - started >= seconds * 1000) {
          clearInterval(timer)
          // Wait for the last acks (up to 10 s), then close.
          const deadline = Date.now() + 10_000
          const wait = setInterval(() => {
            if (pending.size === 0 || Date.now() > deadline) {
              clearInterval(wait)
              tally.lost += pending.size
              ws.close()
              resolve()
            }
          }, 50)
        }
      }, 5)
    })
  })
}

/** 8 streaming clients, each sending framed impression batches (NDJSON ×100) on a fixed schedule. */
export const websocket: Scenario = async (args) =>
  withGateway(args, {}, (gw) =>
    raisedGenerator(async () => {
      const clients = 8
      const perClientRate = Number(process.env.LOADTEST_WS_RATE ?? 40) // batches/s per client
      const seconds = 20
      const pool = bodies('impression', 'ndjson', 40, 100)
      const tally: Tally = { latencies: [], statuses: {}, sent: 0, lost: 0 }
      const meter = new GeneratorMeter()
      await Promise.all(
        Array.from({ length: clients }, (_, i) =>
          streamClient(gw.wsUrl, i, pool, perClientRate, seconds, tally),
        ),
      )
      const { latencies, statuses, sent, lost } = tally
      const gen = meter.share()
      const ok = statuses['200'] ?? 0
      const p99 = Math.round(percentile(latencies, 0.99) * 100) / 100
      const result = {
        tool: 'ws (node), open loop: latency from the scheduled send time to the ack',
        scenario: 'websocket',
        clients,
        batches_per_s_offered: clients * perClientRate,
        sent,
        acks: statuses,
        unacknowledged: lost,
        events_per_s: Math.round((ok * 100) / seconds),
        p50_ms: Math.round(percentile(latencies, 0.5) * 100) / 100,
        p99_ms: p99,
        p999_ms: Math.round(percentile(latencies, 0.999) * 100) / 100,
        errors: lost,
        non2xx: sent - lost - ok,
        gateway_rss_mb: await gw.rssMb(),
        generator_cpu_share: gen,
      }
      return {
        scenario: 'websocket',
        result,
        checks: [
          {
            name: 'every batch acked 200',
            ok: ok === sent,
            detail: `${ok} of ${sent} acked 200; ${lost} never acked; ${JSON.stringify(statuses)}`,
          },
          p99Check(p99, SLO_P99_MS, 'ack p99'),
          generatorCheck(gen),
        ],
      }
    }),
  )
