// Reading everything back and keeping score: which acknowledged event ids reached Kafka (from the
// offsets taken before the scenario, on every adgate topic), how many copies, and the results row.
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeEach, expect } from 'vitest'
import { EVENT_INFO } from '../../../events/catalog.js'
import type { KafkaConnectionOptions } from '../../../kafka/client-options.js'
import { ALL_TOPICS } from '../../../kafka/topics.js'
import { endOffsets, type ReadRecord, readFrom } from '../../support/consume.js'
import type { RunningGateway } from '../../support/gateway.js'
import { ackedOf, type Exchange, type Load, outcomeOf, sleep } from './load.js'
import { type Kafka, type Rig, runId } from './rig.js'

export type Offsets = Map<string, Map<number, string>>

const resultsDir = fileURLToPath(new URL('../results/', import.meta.url))

/** End offsets of every adgate topic, retried: a broker just restarted answers NOT_LEADER for a while. */
async function offsetsNow(brokers: string[], connection: KafkaConnectionOptions = {}): Promise<Offsets> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await endOffsets(brokers, ALL_TOPICS, connection)
    } catch (err) {
      if (attempt >= 40) throw err
      await sleep(500)
    }
  }
}

export interface Downstream {
  /** copies of each of this run's event ids found downstream */
  readonly copies: Map<string, number>
  /** topic of each copy, to check events landed where their type belongs */
  readonly topics: Map<string, Set<string>>
  /** every record read (all runs), to show the read was complete */
  readonly records: number
  readonly expected: number
  /** the first copy of each of this run's event ids: where it landed */
  readonly placements: readonly Placement[]
}

export interface Placement {
  readonly id: string
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
}

/**
 * Read every topic from `from` to the end offsets now. Only fault tests write to the private
 * broker and one file runs at a time, so exactly `end - from` records are expected; the run's
 * own ids are picked out by their prefix.
 */
export async function readBack(
  brokers: string[],
  from: Offsets,
  run: string,
  connection: KafkaConnectionOptions = {},
): Promise<Downstream> {
  const to = await offsetsNow(brokers, connection)
  let expected = 0
  for (const [topic, parts] of to)
    for (const [p, end] of parts) expected += Number(end) - Number(from.get(topic)?.get(p) ?? 0)
  // Partitions created after `from` was taken start at 0.
  const start: Offsets = new Map(
    [...to].map(([topic, parts]) => [
      topic,
      new Map([...parts.keys()].map((p) => [p, from.get(topic)?.get(p) ?? '0'])),
    ]),
  )
  const records = expected === 0 ? [] : await readRetrying(brokers, start, expected, connection)
  const copies = new Map<string, number>()
  const topics = new Map<string, Set<string>>()
  const placements: Placement[] = []
  const prefix = `${run}-`
  for (const r of records) {
    const id = String(r.value.event_id)
    if (!id.startsWith(prefix)) continue
    if (!copies.has(id))
      placements.push({ id, topic: r.topic, partition: r.partition, offset: BigInt(r.offset) })
    copies.set(id, (copies.get(id) ?? 0) + 1)
    const t = topics.get(id) ?? new Set<string>()
    t.add(r.topic)
    topics.set(id, t)
  }
  return { copies, topics, records: records.length, expected, placements }
}

/**
 * readFrom with a fresh consumer per attempt: right after a broker restart the group coordinator
 * may not be ready yet, and the first read fails.
 */
async function readRetrying(
  brokers: string[],
  start: Offsets,
  expected: number,
  connection: KafkaConnectionOptions,
): Promise<ReadRecord[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await readFrom(brokers, start, (rs) => rs.length >= expected, 60_000, connection)
    } catch (err) {
      if (attempt >= 4) throw err
      await sleep(2000)
    }
  }
}

export interface Figures {
  scenario: string
  events_sent: number
  events_acked: number
  /** acknowledged event ids found downstream (distinct) */
  found_downstream: number
  /** acknowledged event ids not found downstream: must be 0 */
  missing: number
  /** extra copies of acknowledged events downstream (consumers dedup by event_id) */
  duplicates: number
  /** events of requests that got an error but reached Kafka anyway (allowed: a retry dedups) */
  unacked_downstream: number
  /** acknowledged events of one client found in a partition before an event that client sent earlier: must be 0 */
  order_violations: number
  gateway_rss_peak_mb: number
  requests: number
  outcomes: Record<string, number>
  [extra: string]: unknown
}

function figures(
  scenario: string,
  load: Load,
  down: Downstream,
  rssPeakMb: number,
  extra: Record<string, unknown> = {},
): Figures {
  const acked = load.ackedIds()
  const ackedSet = new Set(acked)
  let found = 0
  let duplicates = 0
  for (const id of acked) {
    const n = down.copies.get(id) ?? 0
    if (n > 0) found++
    if (n > 1) duplicates += n - 1
  }
  const unacked = load.exchanges
    .flatMap((e) => e.ids)
    .filter((id) => !ackedSet.has(id) && down.copies.has(id))
  return {
    scenario,
    events_sent: load.eventsSent,
    events_acked: acked.length,
    found_downstream: found,
    missing: acked.length - found,
    duplicates,
    unacked_downstream: unacked.length,
    order_violations: orderViolations(load, down, ackedSet),
    gateway_rss_peak_mb: rssPeakMb,
    requests: load.exchanges.length,
    outcomes: load.outcomes(),
    ...extra,
  }
}

/**
 * Each load client sends its requests one after another and numbers its events in sending order
 * (event ids end in that number), so within a partition a client's acknowledged events must appear
 * in increasing number; one that appears after a higher-numbered one of its client is a violation
 * (a retry or a replay that reordered). Only each event's first copy counts (copies are duplicates).
 */
function orderViolations(load: Load, down: Downstream, acked: ReadonlySet<string>): number {
  const clientOf = new Map<string, number>()
  for (const e of load.exchanges) for (const id of e.ids) clientOf.set(id, e.client)
  const byPartition = new Map<string, Placement[]>()
  for (const p of down.placements) {
    if (!acked.has(p.id)) continue
    const key = `${p.topic}:${p.partition}`
    const list = byPartition.get(key) ?? []
    list.push(p)
    byPartition.set(key, list)
  }
  let violations = 0
  for (const list of byPartition.values()) {
    list.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0))
    const highest = new Map<number, number>()
    for (const p of list) {
      const client = clientOf.get(p.id) ?? -1
      const seq = Number(p.id.slice(p.id.lastIndexOf('-') + 1))
      if (seq < (highest.get(client) ?? -1)) violations++
      else highest.set(client, seq)
    }
  }
  return violations
}

/** The core promise: every acknowledged event id is downstream, in its type's topic. */
export function expectNoAckedLoss(load: Load, down: Downstream): void {
  expect(down.records, 'read back fewer records than the topics hold').toBeGreaterThanOrEqual(down.expected)
  const acked = load.acked()
  expect(acked.length).toBeGreaterThan(0)
  const missing: string[] = []
  const misplaced: string[] = []
  for (const e of acked) {
    const topic = EVENT_INFO[e.type].topic
    for (const id of ackedOf(e)) {
      const t = down.topics.get(id)
      if (!t) missing.push(id)
      else if (t.size !== 1 || !t.has(topic)) misplaced.push(`${id}: ${[...t].join(',')} (want ${topic})`)
    }
  }
  expect(missing.length, `acknowledged events missing downstream, e.g. ${missing.slice(0, 10)}`).toBe(0)
  expect(misplaced.length, `events in the wrong topic, e.g. ${misplaced.slice(0, 5)}`).toBe(0)
}

/**
 * Every request got an answer in time (no hang); `allowed` says which outcomes this scenario may
 * produce (see outcomeOf). Every 503 carries Retry-After and accepts nothing.
 */
export function expectAnswered(load: Load, allowed: (e: Exchange, outcome: string) => boolean): void {
  const hung = load.exchanges.filter((e) => e.answeredAt === 0 || e.error?.startsWith('TimeoutError'))
  expect(hung.map(brief), 'requests without an answer (hangs)').toEqual([])
  const bad = load.exchanges.filter((e) => !allowed(e, outcomeOf(e)))
  expect(bad.slice(0, 5).map(brief), `${bad.length} unexpected outcomes`).toEqual([])
  for (const e of load.exchanges.filter((x) => x.status === 503)) {
    expect(e.retryAfter, brief(e)).toMatch(/^[1-9]\d*$/)
    expect(e.body?.accepted ?? 0, brief(e)).toBe(0)
    expect(e.body?.error, brief(e)).toMatchObject({ retryable: true })
  }
  for (const e of load.exchanges.filter((x) => x.status === 200))
    expect(e.body, brief(e)).toMatchObject({ accepted: e.ids.length, rejected: 0 })
}

function brief(e: Exchange): string {
  return `${e.type} x${e.ids.length} to #${e.target} at ${e.sentAt}: ${outcomeOf(e)} after ${
    e.answeredAt - e.sentAt
  } ms ${e.body ? JSON.stringify(e.body).slice(0, 200) : ''}`
}

let commit: string | undefined
function headCommit(): string {
  if (commit === undefined) {
    try {
      commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    } catch {
      commit = 'unknown'
    }
  }
  return commit
}

/**
 * Print the row. With RECORD_RESULTS=1 (`npm run test:faults:record`), also write
 * test/faults/results/<scenario>.json when every test of the suite passed: a plain `npm test`
 * leaves the committed results, and the tree, as they were.
 */
function report(f: Figures, passed: boolean): void {
  console.log(`fault scenario ${f.scenario}: ${JSON.stringify(f)}`)
  if (process.env.RECORD_RESULTS !== '1') return
  if (!passed) {
    console.log(`fault scenario ${f.scenario}: not passed, results file left as it was`)
    return
  }
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(
    `${resultsDir}${f.scenario}.json`,
    `${JSON.stringify({ ...f, commit: headCommit(), date: new Date().toISOString() }, null, 2)}\n`,
  )
}

/** What a scenario run left: the last gateway's exit code, the run's records in Kafka, the figures. */
export interface Recorded {
  exitCode: number | NodeJS.Signals
  down: Downstream
  fig: Figures
}

/**
 * The bookkeeping around one run of a scenario: a run id for its events and Kafka's offsets before
 * the load; after it, the gateways' peak RSS, the last gateway stopped, the run's records read back
 * and the figures.
 */
export class Recording {
  private constructor(
    readonly scenario: string,
    readonly run: string,
    private readonly rig: Rig<Kafka>,
    private readonly from: Offsets,
  ) {}

  static async begin(rig: Rig<Kafka>, scenario: string): Promise<Recording> {
    const from = await offsetsNow(rig.brokers, rig.broker.connection)
    return new Recording(scenario, runId(scenario), rig, from)
  }

  /** Once the load stopped: SIGTERM to the last of `gateways`; `extra` adds the scenario's own figures. */
  async end(
    load: Load,
    gateways: RunningGateway[],
    extra: (down: Downstream) => Record<string, unknown>,
  ): Promise<Recorded> {
    const rss = this.rig.rss.peakMb(...gateways.map((gw) => gw.process.pid))
    const exitCode = await gateways.at(-1)!.stop()
    const down = await readBack(this.rig.brokers, this.from, this.run, this.rig.broker.connection)
    return { exitCode, down, fig: figures(this.scenario, load, down, rss, extra(down)) }
  }

  /**
   * Call inside a describe: after its tests, the figures of what `recorded()` gives (once a run
   * set it) are reported, and their results file written only when every test passed.
   */
  static reportAfterAll(recorded: () => Recorded | undefined): void {
    const passed = trackPassed()
    afterAll(() => {
      const r = recorded()
      if (r) report(r.fig, passed())
    })
  }
}

/**
 * Call inside a describe: returns a function telling whether every test of it so far passed
 * (and at least one ran), to write results only for a scenario that passed.
 */
function trackPassed(): () => boolean {
  let failed = false
  let ran = 0
  beforeEach(({ onTestFailed }) => {
    ran++
    onTestFailed(() => {
      failed = true
    })
  })
  return () => ran > 0 && !failed
}
