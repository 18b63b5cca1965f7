import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { EventType } from '../events/catalog.js'
import { encodeEvents } from '../generator/encode.js'
import { generateEvents } from '../generator/funnel.js'
import { MIX } from './lib/mix.js'
import type { RunOptions } from './lib/module.js'
import { type BenchResult, commitId, REPO_ROOT, RESULTS_DIR, type ResultsFile } from './lib/results.js'
import { OURS, STREAMS_WORKLOAD } from './lib/streams-peer.js'

export const description =
  'capacity-planning report: reads bench/results and loadtest/results, writes bench/REPORT.md and bench/plots/*.svg (runs last)'

const PLOTS = join(REPO_ROOT, 'bench', 'plots')
const UTILISATION = 0.6
/** Write budget per Kafka partition used for the partition count (a conservative rule of thumb). */
const PARTITION_MB_S = 5
const TARGETS = [50_000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000]

function readResults(name: string): BenchResult[] {
  const f = join(RESULTS_DIR, `${name}.json`)
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as ResultsFile).results.slice() : []
}

function find(rs: BenchResult[], casePrefix: string, metric: string): number | undefined {
  return rs.find((r) => r.case.startsWith(casePrefix) && r.metric === metric)?.value
}

// ---- hand-written SVG ------------------------------------------------------------------------
const W = 560
const H = 320
const M = { l: 64, r: 150, t: 30, b: 44 }
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e']

interface Series {
  name: string
  points: [number, number][]
  dashed?: boolean
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;')
}

function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], logY = false): string {
  const all = series.flatMap((s) => s.points)
  const xMax = Math.max(...all.map((p) => p[0])) * 1.05
  const yVals = all.map((p) => p[1]).filter((v) => v > 0)
  const yMin = logY ? 10 ** Math.floor(Math.log10(Math.min(...yVals))) : 0
  const yMax = logY ? 10 ** Math.ceil(Math.log10(Math.max(...yVals))) : Math.max(...yVals) * 1.1
  const pw = W - M.l - M.r
  const ph = H - M.t - M.b
  const x = (v: number) => M.l + (v / xMax) * pw
  const y = (v: number) =>
    logY
      ? M.t +
        ph -
        ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph
      : M.t + ph - (v / yMax) * ph
  const out: string[] = [header(title)]
  out.push(`<line x1="${M.l}" y1="${M.t + ph}" x2="${M.l + pw}" y2="${M.t + ph}" stroke="#333"/>`)
  out.push(`<line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${M.t + ph}" stroke="#333"/>`)
  for (let i = 0; i <= 4; i++) {
    const xv = (xMax / 4) * i
    out.push(`<text x="${x(xv)}" y="${M.t + ph + 16}" font-size="10" text-anchor="middle">${fmt(xv)}</text>`)
    const yv = logY ? yMin * (yMax / yMin) ** (i / 4) : (yMax / 4) * i
    out.push(`<text x="${M.l - 6}" y="${y(yv) + 3}" font-size="10" text-anchor="end">${fmt(yv)}</text>`)
    out.push(`<line x1="${M.l}" y1="${y(yv)}" x2="${M.l + pw}" y2="${y(yv)}" stroke="#eee"/>`)
  }
  out.push(`<text x="${M.l + pw / 2}" y="${H - 8}" font-size="11" text-anchor="middle">${esc(xLabel)}</text>`)
  out.push(
    `<text x="14" y="${M.t + ph / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 14 ${M.t + ph / 2})">${esc(yLabel)}</text>`,
  )
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]
    const pts = s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')
    out.push(
      `<polyline points="${pts}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`,
    )
    for (const [a, b] of s.points)
      out.push(`<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="3" fill="${c}"/>`)
    out.push(`<rect x="${W - M.r + 10}" y="${M.t + i * 18}" width="12" height="3" fill="${c}"/>`)
    out.push(`<text x="${W - M.r + 26}" y="${M.t + i * 18 + 5}" font-size="10">${esc(s.name)}</text>`)
  })
  out.push('</svg>\n')
  return out.join('\n')
}

function barChart(title: string, unit: string, bars: [string, number][]): string {
  const max = Math.max(...bars.map((b) => b[1])) * 1.15
  const bh = 26
  const h = M.t + bars.length * (bh + 10) + 20
  const pw = W - 230
  const out = [header(title, h)]
  bars.forEach(([name, v], i) => {
    const yy = M.t + i * (bh + 10)
    out.push(`<text x="200" y="${yy + bh / 2 + 4}" font-size="11" text-anchor="end">${esc(name)}</text>`)
    out.push(
      `<rect x="210" y="${yy}" width="${((v / max) * pw).toFixed(1)}" height="${bh}" fill="${COLORS[i % COLORS.length]}"/>`,
    )
    out.push(
      `<text x="${214 + (v / max) * pw}" y="${yy + bh / 2 + 4}" font-size="11">${fmt(v)} ${esc(unit)}</text>`,
    )
  })
  out.push('</svg>\n')
  return out.join('\n')
}

function header(title: string, h = H): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif">
<title>${esc(title)}</title>
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="18" font-size="13" text-anchor="middle" font-weight="bold">${esc(title)}</text>`
}

function fmt(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(v >= 1e7 ? 0 : 1)}M`
  if (v >= 1e3) return `${(v / 1e3).toFixed(v >= 1e4 ? 0 : 1)}k`
  return v >= 10 ? v.toFixed(0) : v.toFixed(2).replace(/\.?0+$/, '')
}

/** A Markdown table padded the way biome's formatter writes it. */
function mdTable(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n')
}

const num = (v: unknown) => (typeof v === 'number' ? String(Math.round(v * 100) / 100) : String(v))

// ---- report ----------------------------------------------------------------------------------
/** The correlator against the Kafka Streams peer (bench/lib/streams-peer.ts), from correlator.json. */
function streamsSection(): string {
  const rs = readResults('correlator')
  const w = STREAMS_WORKLOAD
  const run = rs.find((r) => r.case.startsWith(`${w}: input records`))
  const skipped = rs.find((r) => r.case.startsWith('kafka streams peer: not run'))
  if (!run)
    return skipped ? `Not run: ${skipped.case}.` : 'Not run yet (`node dist/bench/run.js correlator`).'
  const peers = rs
    .filter((r) => r.case.endsWith(`: ${w}, first record → all committed`) && r.metric === 'events_per_s')
    .map((r) => r.case.slice(0, r.case.indexOf(':')))
  const v = (peer: string, part: string, metric: string) => find(rs, `${peer}: ${w}, ${part}`, metric)
  const rows = peers.map((p) => [
    p,
    num(v(p, 'first record', 'events_per_s') ?? '—'),
    num(v(p, 'first record', 'cpu_s_per_M') ?? '—'),
    num(v(p, 'whole process', 'cpu_s_per_M') ?? '—'),
    num(v(p, 'broker', 'cpu_s_per_M') ?? '—'),
    num(v(p, 'first record', 'peak_rss') ?? '—'),
    ['wins', 'clicks_valid', 'conversions'].map((m) => num(v(p, 'join outputs', m) ?? '—')).join(' / '),
  ])
  const label: Record<string, string> = {
    events_per_s: 'events/s',
    cpu_s_per_M: 'CPU-s / M',
    peak_rss: 'peak RSS',
  }
  const ratios = peers
    .filter((p) => p !== OURS)
    .map((p) => {
      const of = rs.filter((r) => r.case === `${OURS} / ${p}: ${w}` && r.ratio !== undefined)
      return `vs ${p}: ${of.map((r) => `${label[r.metric] ?? r.metric} ×${r.ratio}`).join(', ')}`
    })
  return `${run.value.toLocaleString('en')} records: ${run.case.slice(run.case.indexOf('(') + 1, -1)}. Produced once to
fresh topics; each peer reads them from offset 0 in its own process, one at a time, in rounds with the order
alternated. Timed from the peer's first input record to every record processed and committed and the peer
stopped cleanly (JVM start-up, Streams' rebalance and DuckDB opening excluded; JIT warm-up included for both);
CPU = the peer process's user+system, all threads (/proc); the broker's apart. adgate runs with
\`adgate correlator\`'s settings (DuckDB, re-keyed through Kafka, exactly-once into storage); the Kafka Streams
app (bench/peers/kafka-streams) with its defaults: one stream thread, RocksDB, commits every 100 ms
(exactly_once_v2) or 30 s (at_least_once).

${mdTable(['peer', 'events/s', 'CPU-s / M events', 'CPU-s / M, whole process', 'broker CPU-s / M', 'peak RSS MB', 'wins / valid clicks / conversions'], rows)}

adgate / Kafka Streams (events/s: higher is better for adgate; CPU and RSS: lower): ${ratios.join('; ')}.`
}

/** Mean Avro bytes per event of the steady mix, as it lands in Kafka (OCF overhead included: an upper bound). */
function bytesPerEvent(): number {
  let bytes = 0
  let events = 0
  for (const k of MIX) {
    const n = k.weight * k.eventsPerRequest
    bytes += encodeEvents(k.type as EventType, generateEvents(k.type as EventType, n, 7), 'avro').length
    events += n
  }
  return bytes / events
}

/** The peers and the fixed rates they were measured at, from peers.json's case names. */
interface PeerFigures {
  name: string
  contract: string
  saturation?: number
  rss?: number
  /** Offered events/s → figures at that rate (open loop). */
  rates: Map<
    number,
    { what: string; cpu: number; broker: number; p50: number; p99: number; p999: number; kept: number }
  >
}

function peerFigures(rs: BenchResult[]): PeerFigures[] {
  const out = new Map<string, PeerFigures>()
  for (const r of rs) {
    const m = /^([\w ]+) \(([^)]+)\): (.*)$/.exec(r.case)
    if (!m) continue
    const [, name, contract, rest] = m as unknown as [string, string, string, string]
    const f: PeerFigures = out.get(name) ?? { name, contract, rates: new Map() }
    out.set(name, f)
    if (rest.startsWith('saturation') && r.metric === 'events_per_s') f.saturation = r.value
    const rate = /^(\d+) events\/s offered, open loop \((.*)\)$/.exec(rest)
    if (!rate) continue
    const at = Number(rate[1])
    const row = f.rates.get(at) ?? {
      what: rate[2]!,
      cpu: NaN,
      broker: NaN,
      p50: NaN,
      p99: NaN,
      p999: NaN,
      kept: NaN,
    }
    const key = {
      cpu_s_per_M: 'cpu',
      broker_cpu_s_per_M: 'broker',
      p50_ms: 'p50',
      p99_ms: 'p99',
      p999_ms: 'p999',
      schedule_kept: 'kept',
    }[r.metric] as keyof typeof row | undefined
    if (key && key !== 'what') row[key] = r.value
    f.rates.set(at, row)
  }
  for (const f of out.values()) f.rss = find(rs, `${f.name}: process`, 'peak_rss')
  return [...out.values()]
}

export async function run(options: RunOptions): Promise<BenchResult[]> {
  // --quick renders everything (a smoke test of the report) and writes nothing.
  const write = (path: string, text: string) => {
    if (!options.quick) writeFileSync(path, text)
  }
  const peers = readResults('peers')
  const figures = peerFigures(peers)
  const plots: Record<string, string> = {}
  const latencySeries: Series[] = figures
    .map((f) => ({
      name: `${f.name} p99`,
      points: [...f.rates.entries()]
        .filter(([, x]) => x.what.includes('slowest'))
        .map(([at, x]) => [at, x.p99] as [number, number])
        .sort((a, b) => a[0] - b[0]),
    }))
    .filter((s) => s.points.length > 0)
  if (latencySeries.length > 0)
    plots['latency-vs-load.svg'] = lineChart(
      'p99 latency vs offered load (open loop, from the intended send time)',
      'offered events/s',
      'p99 ms (log)',
      latencySeries,
      true,
    )
  const half = (f: PeerFigures) => [...f.rates.values()].find((x) => x.what.startsWith('50% of the slowest'))
  const cpuBars = figures.flatMap((f) => {
    const h = half(f)
    return h
      ? ([
          [`${f.name}: server`, h.cpu],
          [`${f.name}: broker`, h.broker],
        ] as [string, number][])
      : []
  })
  if (cpuBars.length > 0)
    plots['cpu-per-million.svg'] = barChart(
      "CPU-seconds per million events at 50% of the slowest peer's max",
      'CPU-s',
      cpuBars.filter((b) => Number.isFinite(b[1])),
    )
  for (const [file, svg] of Object.entries(plots)) write(join(PLOTS, file), svg)

  const peerRows = figures.map((f) => {
    const h = half(f)
    return [
      f.name,
      f.contract,
      f.saturation === undefined ? '—' : Math.round(f.saturation).toLocaleString('en'),
      ...[0.25, 0.5, 0.75].map((share) => {
        const x = [...f.rates.values()].find((r) => r.what.startsWith(`${share * 100}% of the slowest`))
        return x ? num(x.cpu) : '—'
      }),
      h ? num(h.broker) : '—',
      h ? `${num(h.p50)} / ${num(h.p99)} / ${num(h.p999)}` : '—',
      num(f.rss ?? '—'),
    ]
  })
  const unavailable = peers.filter((r) => r.metric === 'available').map((r) => r.case)
  const ratioRows = peers
    .filter((r) => r.case.startsWith('adgate ÷') && r.ratio !== undefined)
    .map((r) => [r.case, r.metric, num(r.value), num(r.baseline), `${num(r.ratio)}×`])
  const ours = figures.find((f) => f.name === 'adgate')
  const own = ours
    ? [...ours.rates.values()].find((x) => x.what.startsWith("50% of adgate's own"))
    : undefined
  const best = peers.find((r) => r.case.startsWith('adgate ÷ best peer') && r.metric === 'cpu_s_per_M')
  const bestName = best ? /\(([^)]+)\)/.exec(best.case)?.[1] : undefined
  const jsonIn = figures.filter((f) => f.name !== 'adgate' && f.contract === 'JSON array' && f.saturation)
  const bestJson = jsonIn.reduce<PeerFigures | undefined>(
    (a, f) => (!a || f.saturation! > a.saturation! ? f : a),
    undefined,
  )
  // The broker target is against the peer whose broker spends least per event there (not the
  // server-CPU best peer's: an unkeyed peer writes one batch per request where adgate writes four).
  const lowestBroker = figures
    .filter((f) => f.name !== 'adgate' && half(f) !== undefined)
    .reduce<PeerFigures | undefined>((a, f) => (!a || half(f)!.broker < half(a)!.broker ? f : a), undefined)
  const ourHalf = ours ? half(ours) : undefined
  const brokerRatio =
    ourHalf && lowestBroker
      ? Math.round((ourHalf.broker / half(lowestBroker)!.broker) * 1000) / 1000
      : undefined
  const verdict = (ok: boolean | undefined) =>
    ok === undefined ? 'not measured' : ok ? '**met**' : '**not met**'
  const targets = [
    [
      'server CPU-s / M ≤ 0.5× the best peer’s, at 50% of the slowest max',
      best ? `${num(best.ratio)}× (vs ${bestName})` : '—',
      verdict(best && best.ratio! <= 0.5),
    ],
    [
      'broker CPU-s / M ≤ the best peer’s, at 50% of the slowest max',
      brokerRatio !== undefined ? `${num(brokerRatio)}× (vs ${lowestBroker!.name}, the lowest)` : '—',
      verdict(brokerRatio === undefined ? undefined : brokerRatio <= 1),
    ],
    [
      'saturation ≥ 2× the best JSON-in peer',
      ours?.saturation && bestJson
        ? `${num(ours.saturation / bestJson.saturation!)}× (vs ${bestJson.name})`
        : '—',
      verdict(ours?.saturation && bestJson ? ours.saturation / bestJson.saturation! >= 2 : undefined),
    ],
    [
      "p99 ≤ 10 ms at half of adgate's own max (open loop)",
      own ? `${num(own.p99)} ms` : '—',
      verdict(own ? own.p99 <= 10 : undefined),
    ],
  ]

  // Capacity from cost: cores = target × CPU-s per event ÷ utilisation, per component.
  const gwCpu = own?.cpu ?? Number.NaN
  const brokerCpu = own?.broker ?? Number.NaN
  const correlator = readResults('correlator')
  const corrCpu =
    find(correlator, 'adgate correlator: join workload, first record', 'cpu_s_per_M') ?? Number.NaN
  const cores = (target: number, perM: number) => (target * perM) / 1e6 / UTILISATION
  const bpe = bytesPerEvent()
  const rows = TARGETS.map((target) => {
    const partitions = Math.ceil((target * bpe) / 1e6 / PARTITION_MB_S)
    return [
      target.toLocaleString('en'),
      num(Math.ceil(cores(target, gwCpu) * 10) / 10),
      num(Math.ceil(cores(target, brokerCpu) * 10) / 10),
      num(Math.ceil(cores(target, corrCpu) * 10) / 10),
      String(partitions),
    ]
  })
  // Check against one measured point, adgate's closed-loop saturation run: the cores the model says
  // gateway + broker need at that rate (its costs, before the utilisation headroom) against the
  // cores they were measured to use there (/proc). Not "2 cores ÷ cost": on a shared box the
  // gateway and the broker never had the 2 cores to themselves (the load generator and other
  // tenants ran beside them), which is why that check predicted 0.21× of the measured rate.
  const satCase = 'adgate (JSON array): saturation'
  const measuredAt = ours?.saturation ?? Number.NaN
  const predictedCores = (measuredAt * (gwCpu + brokerCpu)) / 1e6
  const measuredCores =
    (measuredAt *
      ((find(peers, satCase, 'cpu_s_per_M') ?? Number.NaN) +
        (find(peers, satCase, 'broker_cpu_s_per_M') ?? Number.NaN))) /
    1e6
  const loadAverage = find(peers, 'machine: load average', 'load_average')

  const lt = existsSync(join(REPO_ROOT, 'loadtest', 'results'))
    ? readdirSync(join(REPO_ROOT, 'loadtest', 'results')).filter((f) => f.endsWith('.json'))
    : []
  const ltRows = lt.map((f) => {
    const d = JSON.parse(readFileSync(join(REPO_ROOT, 'loadtest', 'results', f), 'utf8')) as Record<
      string,
      unknown
    > & {
      verdict?: { pass: boolean }
    }
    return [
      String(d.scenario),
      ...[d.events_per_s, d.p50_ms, d.p99_ms, d.p999_ms, d.non2xx, d.errors].map(num),
      d.verdict?.pass ? 'PASS' : 'FAIL',
      String(d.commit),
    ]
  })
  const md = `# adgate — benchmark and capacity-planning report

Written by \`npm run bench\` (bench/report.ts) from \`bench/results/*.json\` and
\`loadtest/results/*.json\`; commit \`${commitId()}\`, ${new Date().toISOString()}.

**Machine caveat.** Everything below ran on one 2-core box where the load generator, the Kafka
broker (one KRaft JVM) and the servers under test share the cores — and other engineers' builds
and test suites often ran beside it (each results file records the load average of its run; the
peers run below says its own). Absolute figures are
pessimistic and noisy; the peers are measured interleaved in the same run so their ratios are what
to read. Latency comes only from the open-loop generator (bench/lib/open-loop.ts): constant-rate
arrivals, latency from each request's intended send time, and a schedule check — a run whose
generator fell behind is flagged in the results (\`schedule_kept\`), never silently reported.

## Peers (bench/results/peers.json)

Same generated impressions, 100 per request, every peer answering only once its events are in
Kafka with acks=all (idempotent producers, LZ4), all against one private broker started for the
bench so its CPU is attributable. \`npm run bench -- peers\` builds the peers from the registries
(bench/peers/: Camel's YAML route and launcher, Benthos' and the Collector's main.go and config).
The OpenTelemetry Collector takes the same events as OTLP/JSON log records (one record each) — a
different client contract. Saturation: autocannon, closed loop, 64 connections (throughput only).
Fixed rates: 25/50/75 % of the slowest peer's saturation, every peer at the same offered load,
open loop; CPU = user+system of the server process and of the broker over the run (/proc),
per million events answered 2xx. Medians over interleaved rounds.

${mdTable(['peer', 'client sends', 'events/s at saturation', 'server CPU-s / M @25%', '@50%', '@75%', 'broker CPU-s / M @50%', 'p50 / p99 / p99.9 ms @50%', 'peak RSS MB'], peerRows)}

${unavailable.length ? `Not run: ${unavailable.join('; ')}.\n\n` : ''}Ratios (adgate ÷ peer; events/s: higher is better for adgate, CPU and p99: lower):

${ratioRows.length ? mdTable(['case', 'metric', 'adgate', 'peer', 'ratio'], ratioRows) : 'No ratios: adgate or the peers did not run.'}

### Targets (issue 16), same run

${mdTable(['target', 'measured', 'verdict'], targets)}

Machine load average (1 min) during the run: ${loadAverage === undefined ? 'not recorded' : num(loadAverage)} (median over the measurements; 2 cores).

![latency vs load](plots/latency-vs-load.svg)
![CPU per million events](plots/cpu-per-million.svg)

## Correlator vs Kafka Streams (bench/results/correlator.json)

${streamsSection()}

## Capacity from CPU cost

Cores per component = target events/s × measured CPU-seconds per event ÷ ${UTILISATION} utilisation (headroom for
spikes, a lost instance and GC). Gateway and broker CPU-s per million events: adgate at half its own maximum
(peers.json: ${num(gwCpu)} and ${num(brokerCpu)} CPU-s / M, broker with replication factor 1 — multiply by the
replication factor for a real cluster); correlator: the join workload into DuckDB (correlator.json: ${num(corrCpu)}
CPU-s / M). Partitions per busiest topic = ⌈target × ${bpe.toFixed(0)} B/event ÷ ${PARTITION_MB_S} MB/s⌉ (${bpe.toFixed(0)} B: the mean Avro size
of the steady mix; ${PARTITION_MB_S} MB/s per partition: a conservative rule of thumb, not measured here).

${mdTable(['events/s target', 'gateway cores', 'broker cores (RF 1)', 'correlator cores', 'partitions (busiest topic)'], rows)}

Check against a measured point, adgate's closed-loop saturation run (${Math.round(measuredAt).toLocaleString('en')} events/s): at these
costs the gateway and the broker need ${num(predictedCores)} cores for that rate (before the ${UTILISATION} headroom); measured
there (/proc, user+system): ${num(measuredCores)} cores (measured ÷ predicted = ${num(measuredCores / predictedCores)}). The model's costs
come from half load, where fixed per-second costs weigh more per event, so it over-estimates at full load: the
table errs on the safe side. The saturation rate itself says nothing about capacity here: the gateway and the
broker got only the ${num(measuredCores)} cores above of the box's 2, the rest going to the load generator and to
other tenants (load average ${loadAverage === undefined ? 'not recorded' : num(loadAverage)} during the run).

## Load tests (loadtest/results)

${mdTable(['scenario', 'events/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'non-2xx', 'errors', 'SLO', 'commit'], ltRows)}

See README "Load tests" for what each scenario does and its SLO checks.
`
  write(join(REPO_ROOT, 'bench', 'REPORT.md'), md)
  return [
    { case: 'steady mix, Avro on Kafka', metric: 'bytes_per_event', value: Math.round(bpe), unit: 'bytes' },
    {
      case: 'capacity: gateway cores per 100k events/s at 60%',
      metric: 'cores',
      value: cores(1e5, gwCpu),
      unit: 'cores',
    },
    {
      case: 'capacity: broker cores per 100k events/s at 60% (RF 1)',
      metric: 'cores',
      value: cores(1e5, brokerCpu),
      unit: 'cores',
    },
    {
      case: 'capacity: correlator cores per 100k events/s at 60%',
      metric: 'cores',
      value: cores(1e5, corrCpu),
      unit: 'cores',
    },
    {
      case: `capacity check: gateway + broker cores at adgate's saturation (${Math.round(measuredAt)} events/s), measured vs predicted`,
      metric: 'cores',
      value: measuredCores,
      unit: 'cores',
      baseline: predictedCores,
      ratio: measuredCores / predictedCores,
    },
  ]
}
