import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { kafkaScriptOrThrow } from '../bench/lib/broker.js'
import { MIX } from '../bench/lib/mix.js'
import { type OpenLoopResult, openLoop } from '../bench/lib/open-loop.js'
import { REPO_ROOT } from '../bench/lib/results.js'
import { ensureKafka, metric, startGateway, stop } from '../bench/lib/servers.js'
import { percentile, slope } from '../bench/lib/stats.js'
import { raisedGenerator } from './generator-priority.js'
import {
  type Check,
  contractFields,
  mixedRequests,
  type Outcome,
  printVerdict,
  round2,
  scheduleCheck,
  Timeline,
  writeOutcome,
} from './lib.js'
import { NOISY_NEIGHBOUR_ENV, noisyNeighbour } from './noisy-neighbour.js'
import {
  availabilityCheck,
  OWN_ONLY,
  p99Check,
  type Scenario,
  SLO_P99_MS,
  UsageError,
  waitReady,
  withGateway,
} from './scenario.js'
import { badTraffic } from './scenarios/bad-traffic.js'
import { websocket } from './scenarios/websocket.js'

/**
 * Load-test scenarios: `npm run loadtest -- <scenario> [--minutes N] [--target URL]`. Each drives a
 * gateway with the open-loop generator (../bench/lib/open-loop.ts: constant-rate arrivals, latency from each
 * request's intended send time, a check that it kept its schedule), stops by itself, writes
 * loadtest/results/<scenario>.json and prints an SLO verdict. Against a running gateway with
 * `--target`; otherwise it starts its own on 127.0.0.1 (port chosen by the OS) against the local
 * broker, where the generator, the broker and the gateway share this machine's cores.
 */
/** Offered load of the steady mix, in events/s (≈ 30% of the measured closed-loop maximum here). */
const STEADY_EVENTS = Number(process.env.LOADTEST_EVENTS_PER_S ?? 40_000)

/** Open-loop mixed traffic at a fixed rate; returns the generator's result and the timeline. */
async function mixed(
  url: string,
  eventsPerS: number,
  seconds: number,
  onTick?: (elapsedS: number) => void,
): Promise<{ r: OpenLoopResult; timeline: Timeline; rate: number; eventsPerRequest: number }> {
  const { requests, eventsPerRequest } = mixedRequests(MIX)
  const rate = Math.round(eventsPerS / eventsPerRequest)
  const timeline = new Timeline()
  const t0 = Date.now()
  const tick = onTick ? setInterval(() => onTick((Date.now() - t0) / 1000), 1000) : undefined
  const r = await openLoop({ url, requests, rate, seconds, onResponse: timeline.recorder() })
  if (tick) clearInterval(tick)
  return { r, timeline, rate, eventsPerRequest }
}

const steady: Scenario = async (args) =>
  withGateway(args, {}, (gw) =>
    raisedGenerator(async () => {
      const seconds = 20
      const { r, timeline, rate, eventsPerRequest } = await mixed(gw.url, STEADY_EVENTS, seconds)
      const result = {
        ...contractFields('steady', r, eventsPerRequest, seconds),
        offered: { events_per_s: STEADY_EVENTS, requests_per_s: rate, mix: MIX },
        latency_windows: timeline.windows(1),
        gateway_rss_mb: await gw.rssMb(),
      }
      return {
        scenario: 'steady',
        result,
        checks: [availabilityCheck(r), p99Check(r.latency_ms.p99), scheduleCheck(r)],
      }
    }),
  )

const spike: Scenario = async (args) =>
  withGateway(args, {}, (gw) =>
    raisedGenerator(async () => {
      // 10 s at the base rate, 10 s at 10× (a second generator adds 9×), 10 s back at the base.
      const base = Number(process.env.LOADTEST_SPIKE_BASE ?? 8_000)
      const { requests, eventsPerRequest } = mixedRequests(MIX)
      const baseRate = Math.round(base / eventsPerRequest)
      const timeline = new Timeline()
      const url = gw.url
      const a = openLoop({ url, requests, rate: baseRate, seconds: 30, onResponse: timeline.recorder() })
      await new Promise((resolve) => setTimeout(resolve, 10_000))
      const b = openLoop({
        url,
        requests,
        rate: 9 * baseRate,
        seconds: 10,
        onResponse: timeline.recorder(10_000),
      })
      const [ra, rb] = await Promise.all([a, b])
      const before = timeline.between(0, 10)
      const during = timeline.between(10, 20)
      const after = timeline.between(22, 30)
      const phase = (ms: number[]) => ({
        requests: ms.length,
        p50_ms: round2(percentile(ms, 0.5)),
        p99_ms: round2(percentile(ms, 0.99)),
      })
      const all = timeline.between(0, 30)
      const result = {
        ...contractFields('spike', ra, eventsPerRequest, 30),
        events_per_s: Math.round(((ra.requests['2xx'] + rb.requests['2xx']) * eventsPerRequest) / 30),
        errors: ra.requests.errors + rb.requests.errors,
        non2xx: ra.requests.non2xx + rb.requests.non2xx,
        p50_ms: round2(percentile(all, 0.5)),
        p99_ms: round2(percentile(all, 0.99)),
        p999_ms: round2(percentile(all, 0.999)),
        offered: {
          base_events_per_s: base,
          spike_events_per_s: base * 10,
          base_rps: baseRate,
          spike_rps: 10 * baseRate,
        },
        phases: { before: phase(before), spike: phase(during), after: phase(after) },
        spike_generator: rb,
        timeline: timeline.windows(1),
        gateway_rss_mb: await gw.rssMb(),
      }
      return {
        scenario: 'spike',
        result,
        checks: [
          availabilityCheck(ra),
          availabilityCheck(rb),
          p99Check(percentile(during, 0.99), 1000, 'p99 during the spike'),
          p99Check(percentile(after, 0.99), SLO_P99_MS, 'p99 after the spike (recovered)'),
          scheduleCheck(ra, 'base generator kept its schedule'),
          scheduleCheck(rb, 'spike generator (9× the base on top) kept its schedule'),
        ],
      }
    }),
  )

const soak: Scenario = async (args) =>
  withGateway(args, {}, (gw) =>
    raisedGenerator(async () => {
      const seconds = Math.round((args.minutes ?? 2.5) * 60)
      const samples: { t_s: number; rss_mb: number }[] = []
      const { r, timeline, rate, eventsPerRequest } = await mixed(gw.url, STEADY_EVENTS, seconds, (t) => {
        const t_s = Math.round(t)
        if (t_s % 5 === 0)
          gw.rssMb().then(
            (rss_mb) => samples.push({ t_s, rss_mb }),
            () => {},
          )
      })
      samples.sort((a, b) => a.t_s - b.t_s)
      const windows = timeline.windows(10).filter((w) => w.requests > 0)
      // The first minute is warm-up (JIT, pools, buffers growing to size): slopes from then on.
      const settled = samples.filter((s) => s.t_s >= Math.min(60, seconds / 3))
      const settledW = windows.filter((w) => w.t_s >= Math.min(60, seconds / 3))
      const rssSlope = slope(
        settled.map((s) => s.t_s / 60),
        settled.map((s) => s.rss_mb),
      )
      const p99Slope = slope(
        settledW.map((w) => w.t_s / 60),
        settledW.map((w) => w.p99_ms),
      )
      const result = {
        ...contractFields('soak', r, eventsPerRequest, seconds),
        duration_s: seconds,
        offered: { events_per_s: STEADY_EVENTS, requests_per_s: rate },
        rss_samples: samples,
        latency_windows: windows,
        rss_slope_mb_per_min: rssSlope,
        p99_slope_ms_per_min: p99Slope,
      }
      return {
        scenario: 'soak',
        result,
        checks: [
          availabilityCheck(r),
          p99Check(r.latency_ms.p99),
          {
            name: 'RSS flat (slope ≤ 2 MB/min after warm-up)',
            ok: rssSlope <= 2,
            detail: `${rssSlope.toFixed(2)} MB/min`,
          },
          {
            name: 'p99 flat (slope ≤ 2 ms/min after warm-up)',
            ok: p99Slope <= 2,
            detail: `${p99Slope.toFixed(2)} ms/min`,
          },
          scheduleCheck(r),
        ],
      }
    }),
  )

/** A private broker for the outage drill (scripts/kafka.mjs on its own port and data dir). */
function kafkaScript(command: 'start' | 'stop', port: number, dataDir: string): Promise<void> {
  return kafkaScriptOrThrow(command, { port, dataDir })
}

const outage: Scenario = async (args) => {
  if (args.target !== undefined) throw new UsageError(OWN_ONLY)
  // Never the shared broker on 9092: a private one on 20592 (the tests use 19092–19992).
  const port = Number(process.env.LOADTEST_OUTAGE_PORT ?? 20592)
  const brokerDir = join(REPO_ROOT, 'data', 'loadtest-broker')
  const spoolDir = mkdtempSync(join(tmpdir(), 'adgate-outage-'))
  await kafkaScript('start', port, brokerDir)
  try {
    return await withGateway(
      args,
      { KAFKA_BROKERS: `127.0.0.1:${port}`, ADGATE_DATA_DIR: spoolDir, ADGATE_SPOOL_AFTER_MS: '500' },
      async (gw) => {
        const seconds = 40
        const events: { t_s: number; what: string }[] = []
        const spool: { t_s: number; bytes: number }[] = []
        const t0 = Date.now()
        const at = (what: string) => events.push({ t_s: (Date.now() - t0) / 1000, what })
        const sampler = setInterval(() => {
          metric(gw.url, 'adgate_spool_bytes', Number.NaN).then(
            (bytes) => spool.push({ t_s: (Date.now() - t0) / 1000, bytes }),
            () => {},
          )
        }, 1000)
        const drill = (async () => {
          await new Promise((r) => setTimeout(r, 10_000))
          at('broker stop')
          await kafkaScript('stop', port, brokerDir)
          at('broker stopped')
          await new Promise((r) => setTimeout(r, 12_000))
          at('broker start')
          await kafkaScript('start', port, brokerDir)
          at('broker answering')
        })()
        const run = mixed(gw.url, 10_000, seconds)
        const [{ r, timeline, rate, eventsPerRequest }] = await Promise.all([run, drill])
        // After the load: the spool must drain back to Kafka.
        let drainedAt: number | undefined
        const deadline = Date.now() + 90_000
        while (Date.now() < deadline) {
          const b = await metric(gw.url, 'adgate_spool_bytes', Number.NaN)
          spool.push({ t_s: (Date.now() - t0) / 1000, bytes: b })
          if (b === 0) {
            drainedAt = (Date.now() - t0) / 1000
            break
          }
          await new Promise((res) => setTimeout(res, 1000))
        }
        clearInterval(sampler)
        const peak = Math.max(0, ...spool.map((s) => s.bytes).filter(Number.isFinite))
        const result = {
          ...contractFields('outage', r, eventsPerRequest, seconds),
          offered: { events_per_s: 10_000, requests_per_s: rate },
          drill: events,
          spool_samples: spool,
          spool_peak_bytes: peak,
          spool_drained_at_s: drainedAt ?? null,
          timeline: timeline.windows(1),
        }
        return {
          scenario: 'outage',
          result,
          checks: [
            {
              name: 'clients kept getting 200 through the outage',
              ok: r.requests.non2xx === 0 && r.requests.errors === 0,
              detail: `${r.requests['2xx']} of ${r.requests.sent} 2xx, non2xx ${r.requests.non2xx}, errors ${r.requests.errors}`,
            },
            { name: 'the spool was used', ok: peak > 0, detail: `peak ${(peak / 1e6).toFixed(1)} MB` },
            {
              name: 'the spool drained after the broker came back',
              ok: drainedAt !== undefined,
              detail:
                drainedAt === undefined ? 'not drained within 90 s' : `empty at t=${drainedAt.toFixed(0)} s`,
            },
            p99Check(r.latency_ms.p99, 2000, 'p99 (spool after 500 ms)'),
            scheduleCheck(r),
          ],
        }
      },
      true,
    )
  } finally {
    await kafkaScript('stop', port, brokerDir).catch(() => {})
    rmSync(spoolDir, { recursive: true, force: true })
  }
}

/**
 * Issue 15: valid traffic beside a client posting the worst bodies per decoder (noisy-neighbour.ts).
 * With LOADTEST_BASELINE_DIR (a built checkout of the code before a change), a second gateway from
 * it gets the same open-loop rounds, interleaved.
 */
const noisy: Scenario = async (args) =>
  withGateway(
    args,
    NOISY_NEIGHBOUR_ENV,
    async (gw) => {
      const baselineDir = process.env.LOADTEST_BASELINE_DIR
      const baseline = baselineDir ? await startGateway(NOISY_NEIGHBOUR_ENV, baselineDir) : null
      if (baseline) await waitReady(`http://127.0.0.1:${baseline.port}`)
      // The gateways are started at the niceness this process had; the generator then measures raised.
      const r = await raisedGenerator(() =>
        noisyNeighbour(gw.url, {
          closedSeconds: 5,
          openSeconds: 10,
          rounds: 4,
          baselineUrl: baseline ? `http://127.0.0.1:${baseline.port}` : undefined,
          gatewayPid: gw.pid,
          baselinePid: baseline?.child.pid,
        }),
      ).finally(() => (baseline ? stop(baseline) : undefined))
      const fivexx = Object.keys({ ...r.valid_non2xx, ...r.open.non2xx }).filter(
        (k) => k.startsWith('5') || k === 'errors',
      )
      const conclusive = r.open.rounds.filter((round) => round.conclusive).length
      const pct = (x: number) => `${(x * 100).toFixed(1)}%`
      const checks: Check[] = [
        {
          name: 'valid traffic at a fixed rate is served (≥ 90% of offered) beside the neighbour, in every conclusive round',
          ok: conclusive > 0 && r.open.served_share_min >= 0.9,
          detail: `offered ${r.open.offered_events_per_s} events/s; ${conclusive} of ${r.open.rounds.length} rounds conclusive (served alone); served beside the neighbour: worst round ${pct(r.open.served_share_min)}, median ${pct(r.open.served_share_median)}; p50/p99 ${r.open.with_neighbour.p50_ms}/${r.open.with_neighbour.p99_ms} ms (alone ${r.open.alone.p50_ms}/${r.open.alone.p99_ms} ms)${r.baseline ? `; baseline, interleaved: p50/p99 ${r.baseline.with_neighbour.p50_ms}/${r.baseline.with_neighbour.p99_ms} ms beside (alone ${r.baseline.alone.p50_ms}/${r.baseline.alone.p99_ms} ms)` : ''}`,
        },
        {
          name: "the neighbour's refused work stays within ADGATE_REFUSED_CPU_MS_PER_S",
          ok: r.refused_work_charged_s <= r.refused_work_allowance_s,
          detail: `${r.refused_work_charged_s} s charged over ${r.neighbour_window_s} s of neighbour (allowed ${r.refused_work_allowance_s} s)`,
        },
        {
          name: 'no 5xx for valid traffic (closed loop, and open loop in conclusive rounds)',
          ok: fivexx.length === 0,
          detail: JSON.stringify({ closed: r.valid_non2xx, open: r.open.non2xx }),
        },
      ]
      const result = {
        ...contractFields('noisy-neighbour', r.result, 100, r.result.duration_s),
        noisy_neighbour: { ...r, result: undefined },
        ...(baselineDir ? { baseline_dir: baselineDir } : {}),
        closed_loop_note:
          "closed loop: the most the valid client pushes alone and beside the neighbour; on 2 shared cores it also measures the neighbour process's own CPU, so the verdict is the open-loop one",
      }
      return { scenario: 'noisy-neighbour', result, checks }
    },
    true,
  )

const SCENARIOS: Record<string, Scenario> = {
  'noisy-neighbour': noisy,
  steady,
  spike,
  soak,
  websocket,
  'bad-traffic': badTraffic,
  outage,
}

const USAGE = `usage: npm run loadtest -- <scenario> [--minutes N | --long] [--target http://host:port]
       node dist/loadtest/run.js --help

Scenarios (README.md, "Load tests", says what each does and checks):
  ${Object.keys(SCENARIOS).join(', ')}

Options:
  --target URL   drive a running gateway (or LOADTEST_TARGET); without it the scenario starts
                 its own on 127.0.0.1 against the local broker (bad-traffic, outage: always)
  --minutes N    how long soak runs [2.5]; --long is 10
  --help, -h     this text

Environment: LOADTEST_EVENTS_PER_S (steady and soak rate [40000]), LOADTEST_SPIKE_BASE [8000],
LOADTEST_WS_RATE (batches/s per websocket client [40]), LOADTEST_P99_MS (the p99 SLO [50]),
LOADTEST_OUTAGE_PORT (outage's private broker [20592]), LOADTEST_BASELINE_DIR (noisy-neighbour:
a built older checkout whose gateway gets the same rounds, interleaved).
Writes loadtest/results/<scenario>.json; exit 1 when a check fails.
`
const FLAGS = ['--long', '--minutes', '--target', '--help', '-h']
const TAKES_VALUE = ['--minutes', '--target']

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  const option = (flag: string) => {
    const i = argv.indexOf(flag)
    return i >= 0 ? argv[i + 1] : undefined
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE)
    return
  }
  const words = argv.filter((_, i) => !TAKES_VALUE.includes(argv[i - 1] ?? ''))
  const refused = words.filter((a) => a.startsWith('-') && !FLAGS.includes(a))
  const names = words.filter((a) => !a.startsWith('-'))
  const minutes = argv.includes('--long') ? 10 : option('--minutes') ? Number(option('--minutes')) : undefined
  const target = option('--target') ?? process.env.LOADTEST_TARGET
  const name = names[0]
  const scenario = name ? SCENARIOS[name] : undefined
  if (!scenario || names.length > 1 || refused.length > 0) {
    const why =
      refused.length > 0
        ? `unknown option ${refused.join(', ')}`
        : `one scenario, of ${Object.keys(SCENARIOS).join(', ')}`
    process.stderr.write(`loadtest: ${why}\n\n${USAGE}`)
    process.exit(2)
  }
  if (target === undefined && name !== 'outage') ensureKafka()
  let outcome: Outcome
  try {
    outcome = await scenario({ minutes, target })
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`loadtest ${name}: ${err.message}\n`)
    process.exit(2)
  }
  const file = writeOutcome(outcome)
  printVerdict(outcome, file)
  process.exitCode = outcome.checks.every((c) => c.ok) ? 0 : 1
}

await main()
