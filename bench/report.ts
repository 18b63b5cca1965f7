import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { EventType } from '../events/catalog.js'
import { encodeEvents } from '../generator/encode.js'
import { generateEvents } from '../generator/funnel.js'
import { MIX } from './lib/mix.js'
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

export async function run(): Promise<BenchResult[]> {
  const peers = readResults('peers')
  const gateway = readResults('gateway')
  const names = ['adgate 1 worker', 'adgate 2 workers', 'naive node:http + kafkajs', 'strimzi kafka bridge']
  const sat = (n: string) => find(peers, `${n}: saturation`, 'events_per_s')
  const t1 = sat('adgate 1 worker') ?? find(gateway, 'impressions json', 'events_per_s') ?? 0
  const t2 = sat('adgate 2 workers') ?? t1
  // Universal-scalability-style model fitted to the two measured points: T(n) = T1·n / (1 + σ(n−1)).
  const sigma = Math.max(0, Math.min(1, (2 * t1) / t2 - 1))
  const model = (n: number) => (t1 * n) / (1 + sigma * (n - 1))
  const plots: Record<string, string> = {}
  plots['throughput-vs-workers.svg'] = lineChart(
    'adgate throughput vs decoder workers',
    'workers (cores)',
    'events/s',
    [
      {
        name: 'measured (2-core box)',
        points: [
          [1, t1],
          [2, t2],
        ],
      },
      {
        name: `model σ=${sigma.toFixed(2)}`,
        points: [1, 2, 4, 8, 16].map((n) => [n, model(n)]),
        dashed: true,
      },
    ],
  )
  const latencySeries: Series[] = []
  for (const n of names) {
    const rows = peers.filter(
      (r) => r.case.startsWith(`${n}: `) && r.case.includes('offered') && r.metric === 'p99',
    )
    if (rows.length === 0) continue
    const pts = rows
      .map((r) => [Number(/: (\d+) events\/s offered/.exec(r.case)?.[1]), r.value] as [number, number])
      .sort((a, b) => a[0] - b[0])
    latencySeries.push({ name: `${n} p99`, points: pts })
  }
  if (latencySeries.length > 0)
    plots['latency-vs-load.svg'] = lineChart(
      'p99 latency vs offered load (open loop)',
      'offered events/s',
      'p99 ms (log)',
      latencySeries,
      true,
    )
  const cpuBars = names
    .map(
      (n) =>
        [n, find(peers, `${n}: server CPU per million events`, 'cpu_s_per_M')] as [
          string,
          number | undefined,
        ],
    )
    .filter((b): b is [string, number] => b[1] !== undefined && Number.isFinite(b[1]))
  if (cpuBars.length > 0)
    plots['cpu-per-million.svg'] = barChart('server CPU-seconds per million events', 'CPU-s', cpuBars)
  for (const [file, svg] of Object.entries(plots)) writeFileSync(join(PLOTS, file), svg)

  const bpe = bytesPerEvent()
  // One 2-core instance at its better worker count, as measured here (generator and broker on the same cores).
  const perInstance = Math.max(t1, t2)
  const rows = TARGETS.map((target) => {
    const instances = Math.max(1, Math.ceil(target / (perInstance * UTILISATION)))
    const partitions = Math.max(instances, Math.ceil((target * bpe) / 1e6 / PARTITION_MB_S))
    return [target.toLocaleString('en'), String(instances), String(partitions)]
  })

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
  const peerRows = names.map((n) => {
    const s = sat(n)
    const half = peers.find(
      (r) => r.case.startsWith(`${n}: `) && r.case.includes('offered') && r.metric === 'p99',
    )
    return [
      n,
      s === undefined ? 'not run' : Math.round(s).toLocaleString('en'),
      num(find(peers, `${n}: server CPU`, 'cpu_s_per_M') ?? '—'),
      num(find(peers, `${n}: broker CPU`, 'cpu_s_per_M') ?? '—'),
      num(find(peers, `${n}: process`, 'peak_rss') ?? '—'),
      half ? `${half.value} ms @ ${/: (\d+) events/.exec(half.case)?.[1]}` : '—',
    ]
  })
  const strimziNote = peers.find((r) => r.case.startsWith('strimzi kafka bridge: not run'))?.case
  const md = `# adgate — benchmark and capacity-planning report

Written by \`npm run bench\` (bench/report.ts) from \`bench/results/*.json\` and
\`loadtest/results/*.json\`; commit \`${commitId()}\`, ${new Date().toISOString()}.

**Machine caveat.** Everything below ran on one 2-core box where the load generator
(autocannon), the Kafka broker (one KRaft JVM) and the server under test share the cores —
and other work (test suites) may run beside it. Absolute figures are pessimistic and noisy;
compare ratios across runs, and use \`npm run bench:compare -- old.json new.json\` to diff.
Each load-test result records the generator's CPU share and achieved-vs-offered rate.

## Peers (bench/results/peers.json)

Same generated workload (impressions, JSON, 100 events per request), same local broker,
acks=all, one server at a time.

${mdTable(['server', 'events/s at saturation', 'server CPU-s / M events', 'broker CPU-s / M events', 'peak RSS MB', 'lowest-rate p99'], peerRows)}

${strimziNote ? `Strimzi Kafka Bridge: ${strimziNote.replace('strimzi kafka bridge: ', '')}. \`io.strimzi:kafka-bridge\` is not published on Maven Central (its maven-metadata.xml answers 404 while \`io.strimzi:api\` answers 200); Strimzi ships the bridge as a release archive on GitHub and as a container image, neither reachable from this machine (registries only, no Docker engine). The bench still tries \`mvn dependency:copy-dependencies\` on bench/peers/strimzi/pom.xml each run and runs the bridge (batching, LZ4, acks=all) when it resolves.` : ''}

![throughput vs workers](plots/throughput-vs-workers.svg)
![latency vs load](plots/latency-vs-load.svg)
![CPU per million events](plots/cpu-per-million.svg)

## Correlator vs Kafka Streams (bench/results/correlator.json)

${streamsSection()}

## Throughput vs cores

Measured: 1 worker ${Math.round(t1).toLocaleString('en')} events/s, 2 workers ${Math.round(t2).toLocaleString('en')} events/s
(impressions JSON, closed loop). Model beyond 2 cores: T(n) = T1·n / (1 + σ(n−1)) with σ fitted to the
two points (σ = 2·T1/T2 − 1 = ${sigma.toFixed(2)}). On this box σ mostly measures the generator and the broker
competing for the same 2 cores, so the model is a lower bound for a dedicated instance; the safer way to
scale is more 2-core instances behind a load balancer, which is what the table assumes.

## Capacity table

Method: per-instance capacity = the better measured saturation (1 or 2 workers) (${Math.round(perInstance).toLocaleString('en')} events/s on a 2-core
instance, generator and broker included on the same cores); instances = ⌈target / (capacity × ${UTILISATION})⌉ (60% utilisation
leaves headroom for spikes, a lost instance and GC). Partitions = max(instances, ⌈target × ${bpe.toFixed(0)} B/event / ${PARTITION_MB_S} MB/s⌉):
${bpe.toFixed(0)} B is the mean Avro size of the steady mix (bids ≫ impressions ≫ clicks ≫ conversions) measured from the generator,
${PARTITION_MB_S} MB/s per partition is a conservative write budget (a rule of thumb, not measured here), and at least one partition
per instance keeps producers' batches spread. Correlator parallelism also needs partitions ≥ correlator instances: its measured
rate (bench/results/correlator.json) is ~60k events/s per instance into DuckDB.

${mdTable(['events/s target', 'gateway instances (2 cores, 60%)', 'Kafka partitions per topic (busiest topic)'], rows)}

## Load tests (loadtest/results)

${mdTable(['scenario', 'events/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'non-2xx', 'errors', 'SLO', 'commit'], ltRows)}

See README "Load tests" for what each scenario does and its SLO checks.
`
  writeFileSync(join(REPO_ROOT, 'bench', 'REPORT.md'), md)
  return [
    {
      case: 'model: scalability σ from 1 → 2 workers',
      metric: 'sigma',
      value: Math.round(sigma * 1000) / 1000,
      unit: '',
    },
    { case: 'steady mix, Avro on Kafka', metric: 'bytes_per_event', value: Math.round(bpe), unit: 'bytes' },
  ]
}
