// A real Prometheus (Debian's, installed by .ci/run) scrapes a real gateway under a short load
// every second with adgate's recording rules and alerts loaded; the rules are then queried
// through its HTTP API and must hold sensible values, and no rule may fail to evaluate.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { post, type RunningGateway, startGateway } from '../support/gateway.js'
import { presentOrSkipped } from '../support/services.js'

const brokers = inject('kafkaBrokers')
const RULES = fileURLToPath(new URL('../../ops/prometheus/rules/', import.meta.url))
const LOAD_SECONDS = 8

const hasPrometheus = presentOrSkipped('prometheus')

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

interface Sample {
  metric: Record<string, string>
  value: [number, string]
}

describe.skipIf(!hasPrometheus || brokers.length === 0)(
  'a real Prometheus scraping a gateway under load',
  () => {
    let gw: RunningGateway
    let prom: ChildProcess
    let promUrl: string
    let promLog = ''
    let dir: string
    const sent = { requests: 0, accepted: 0, rejected: 0 }

    async function query(expr: string): Promise<Sample[]> {
      const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`)
      const body = (await res.json()) as { status: string; error?: string; data: { result: Sample[] } }
      if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`)
      return body.data.result
    }
    async function scalar(expr: string): Promise<number> {
      const r = await query(expr)
      expect(r.length, `${expr} has no value\n${promLog}`).toBe(1)
      return Number(r[0]!.value[1])
    }

    beforeAll(async () => {
      gw = await startGateway(brokers)
      dir = mkdtempSync(join(tmpdir(), 'adgate-prometheus-'))
      const port = await freePort()
      promUrl = `http://127.0.0.1:${port}`
      writeFileSync(
        join(dir, 'prometheus.yml'),
        [
          'global:',
          '  scrape_interval: 1s',
          '  evaluation_interval: 1s',
          'rule_files:',
          `  - ${join(RULES, 'adgate-recording.yml')}`,
          `  - ${join(RULES, 'adgate-alerts.yml')}`,
          'scrape_configs:',
          '  - job_name: adgate-gateway',
          '    static_configs:',
          `      - targets: ['127.0.0.1:${gw.port}']`,
          '',
        ].join('\n'),
      )
      prom = spawn(
        'prometheus',
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      )
      prom.stdout!.on('data', (d: Buffer) => {
        promLog += d.toString()
      })
      prom.stderr!.on('data', (d: Buffer) => {
        promLog += d.toString()
      })
      const deadline = Date.now() + 30_000
      for (;;) {
        if (prom.exitCode !== null) throw new Error(`prometheus exited:\n${promLog}`)
        const ready = await fetch(`${promUrl}/-/ready`).then(
          (r) => r.status === 200,
          () => false,
        )
        if (ready) break
        if (Date.now() > deadline) throw new Error(`prometheus not ready in 30 s:\n${promLog}`)
        await new Promise((r) => setTimeout(r, 200))
      }

      // Bounded load: 3 clients for a few seconds, 50 events per request, one in ten with a bad event.
      const started = Date.now()
      let seed = 61_000 + (Date.now() % 100_000)
      await Promise.all(
        [0, 1, 2].map(async () => {
          while (Date.now() - started < LOAD_SECONDS * 1000) {
            const events = generateEvents('impression', 50, seed++)
            if (seed % 10 === 0) (events[0] as Record<string, unknown>).cost_micros = -1
            const res = await post(`${gw.url}/v1/impressions`, encodeEvents('impression', events, 'json'), {
              'content-type': 'application/json',
            })
            expect([200, 207]).toContain(res.status)
            sent.requests++
            sent.accepted += Number(res.body.accepted)
            sent.rejected += Number(res.body.rejected)
            await new Promise((r) => setTimeout(r, 20))
          }
        }),
      )
      // Two more scrapes and rule evaluations after the load.
      await new Promise((r) => setTimeout(r, 2500))
    }, 120_000)

    afterAll(async () => {
      if (prom && prom.exitCode === null) {
        const exited = new Promise((r) => prom.once('exit', r))
        prom.kill('SIGTERM')
        await exited
      }
      if (dir) rmSync(dir, { recursive: true, force: true })
      if (gw) expect(await gw.stop()).toBe(0)
    }, 60_000)

    it('scrapes the gateway and evaluates every rule without error', async () => {
      expect(await scalar('up{job="adgate-gateway"}')).toBe(1)
      const res = await fetch(`${promUrl}/api/v1/rules`)
      const body = (await res.json()) as {
        data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] }
      }
      const rules = body.data.groups.flatMap((g) => g.rules)
      expect(rules.length).toBeGreaterThanOrEqual(55)
      const unhealthy = rules.filter((r) => r.health !== 'ok')
      expect(unhealthy, JSON.stringify(unhealthy)).toEqual([])
    })

    it('sees exactly the traffic the clients sent, and records its rate', async () => {
      expect(await scalar('sum(adgate_http_requests_total)')).toBe(sent.requests)
      expect(await scalar('sum(adgate_events_total{outcome="accepted"})')).toBe(sent.accepted)
      expect(await scalar('sum(adgate_events_total{outcome="rejected"})')).toBe(sent.rejected)
      // rate5m averages over 5 minutes: a few seconds of traffic show as about requests / 300 s
      const recorded = await scalar('adgate:ingest_requests:rate5m')
      expect(recorded).toBeGreaterThan((sent.requests / 300) * 0.1)
      expect(recorded).toBeLessThan((sent.requests / 300) * 3)
      const events = await query('adgate:events:rate5m')
      const by = (outcome: string) => Number(events.find((s) => s.metric.outcome === outcome)?.value[1] ?? 0)
      expect(by('accepted')).toBeGreaterThan(recorded * 40)
      expect(by('rejected')).toBeGreaterThan(0)
      expect(by('failed')).toBe(0)
      expect((await query('adgate:events_rejected:rate5m'))[0]?.metric.reason).toBe('INVALID_EVENT')
    })

    it('holds sensible SLI values: no 5xx, no loss, answers mostly fast', async () => {
      expect(await scalar('adgate:availability_errors:ratio_rate5m')).toBe(0)
      expect(await scalar('adgate:availability_errors:ratio_rate1h')).toBe(0)
      expect(await scalar('adgate:durability_loss:ratio_rate5m')).toBe(0)
      const slow = await scalar('adgate:latency_slow:ratio_rate5m')
      expect(slow).toBeGreaterThanOrEqual(0)
      expect(slow).toBeLessThan(0.5)
      // no correlator is scraped here: the freshness SLI has no value rather than a wrong one
      expect(await query('adgate:freshness_late:ratio_rate5m')).toEqual([])
    })

    it('holds sensible golden signals', async () => {
      const p50 = await scalar('adgate:request_duration_seconds:p50_rate5m')
      const p99 = await scalar('adgate:request_duration_seconds:p99_rate5m')
      expect(p50).toBeGreaterThan(0)
      expect(p99).toBeGreaterThanOrEqual(p50)
      expect(p99).toBeLessThan(10)
      const ack = await scalar('adgate:ingest_to_ack_seconds:p99_rate5m')
      expect(ack).toBeGreaterThan(0)
      expect(ack).toBeLessThanOrEqual(p99 * 1.5)
      const util = await scalar('adgate:worker_pool_utilization:ratio_rate5m')
      expect(util).toBeGreaterThan(0)
      expect(util).toBeLessThanOrEqual(1)
      expect(await scalar('adgate:kafka_compression_ratio:rate5m')).toBeGreaterThan(1)
      expect(await scalar('adgate:kafka_batch_records:avg_rate5m')).toBeGreaterThanOrEqual(1)
      expect(await scalar('adgate:spool_fill:ratio')).toBe(0)
    })

    it('fires no alert on a healthy gateway', async () => {
      const res = await fetch(`${promUrl}/api/v1/alerts`)
      const body = (await res.json()) as {
        data: { alerts: { labels: { alertname: string }; state: string }[] }
      }
      const firing = body.data.alerts.filter((a) => a.state === 'firing')
      expect(firing, JSON.stringify(firing)).toEqual([])
    })
  },
)
