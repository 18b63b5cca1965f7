import { decodeBody, transcodeBody } from '../../decoders/decode.js'
import type { Encoding } from '../../decoders/result.js'
import { nativeStatus } from '../../decoders/transcode.js'
import type { EventType } from '../../events/catalog.js'
import { encodeEvents } from '../../generator/encode.js'
import { generateEvents } from '../../generator/funnel.js'
import { compileRules, type Rule } from '../../quality/rules.js'
import { activeRules, attachRulesChannel, RulesChannel, useRules } from '../../quality/rules-channel.js'
import { defaultRulesPath, loadRules } from '../../quality/rules-file.js'
import { runDecodeTask } from '../../workers/decode-task.js'
import { PARTITIONS } from './decode-task-workload.js'
import { type HarnessOptions, measure } from './harness.js'
import { oneBodyTask } from './one-body-task.js'
import { type BenchResult, compared } from './results.js'

/**
 * What the data-quality rules cost on the hot path: a worker's decode task (decode, validate,
 * encode, batch) with the shipped default rules against the same task with no rules, interleaved
 * in one thread. Then how a rules version reaches the workers: the shared-memory channel's check
 * per task against cloning the rules into every task (the alternative design).
 */
const EVENTS = 1000
const BODIES = 4

const CASES: readonly [EventType, Encoding][] = [
  ['impression', 'json'],
  ['impression', 'ndjson'],
  ['click', 'csv'],
  ['conversion', 'csv'],
  ['bid', 'avro'],
]

function taskOf(type: EventType, encoding: Encoding, seed: number) {
  const events = generateEvents(type, EVENTS, seed)
  // Fresh events, as live traffic: the freshness rules see times near the ingest time.
  const ingestTime = (events[EVENTS - 1]!.event_time as number) + 1000
  const body = encodeEvents(type, events, encoding)
  const facts = {
    type,
    encoding,
    contentEncoding: 'identity',
    source: 'bench',
    requestId: 'bench-1',
    ingestTime,
  } as const
  return () =>
    runDecodeTask(oneBodyTask(body, facts, { maxBytes: 1 << 26, maxEvents: EVENTS, partitions: PARTITIONS }))
}

export async function qualityCostCases(h: HarnessOptions): Promise<BenchResult[]> {
  const rules = loadRules(defaultRulesPath())
  const compiled = compileRules(rules)
  const results: BenchResult[] = []
  for (const [type, encoding] of CASES) {
    const tasks = Array.from({ length: BODIES }, (_, i) => taskOf(type, encoding, 4000 + i))
    let n = 0
    const next = () => tasks[n++ % BODIES]!()
    // Sanity: the generated events pass the defaults, so both sides do the same work but the checks.
    useRules(compiled)
    const check = next().outcomes[0]!
    if (check.events !== EVENTS || check.flagged !== 0)
      throw new Error(`${type} ${encoding}: ${JSON.stringify(check)}`)
    const bytes = 0
    const [withRules, without] = await measure(
      [
        {
          name: 'decode task + default rules',
          events: EVENTS,
          bytes,
          fn: () => {
            useRules(compiled)
            return next()
          },
        },
        {
          name: 'decode task, no rules',
          events: EVENTS,
          bytes,
          fn: () => {
            useRules(null)
            return next()
          },
        },
      ],
      h,
    )
    const name = `quality rules, ${type}s as ${encoding} ×${EVENTS}: ${withRules!.name} vs ${without!.name}`
    results.push(compared(name, 'events/s', 'events/s/core', withRules!.eventsPerSec, without!.eventsPerSec))
    results.push({
      case: name,
      metric: 'rule cost',
      value: (1 - withRules!.eventsPerSec / without!.eventsPerSec) * 100,
      unit: '% of decode throughput',
    })
  }
  useRules(null)
  results.push(...(await projectionCase(compiled.byType.impression!.fields, h)))
  results.push(...(await jsPathCase(compiled.byType.impression!, h)))
  results.push(...(await deliveryCases(rules, h)))
  const worst = Math.max(...results.filter((r) => r.metric === 'rule cost').map((r) => r.value))
  process.stdout.write(
    `\nquality rules: worst cost of the default rules ${worst.toFixed(1)}% of decode throughput (target < 15%): ${worst < 15 ? 'met' : 'NOT met'}\n`,
  )
  return results
}

/** A JSON body of fresh impressions and the decode options for it, as a worker task has them. */
function impressionsBody(seed: number) {
  const events = generateEvents('impression', EVENTS, seed)
  const body = encodeEvents('impression', events, 'json')
  const options = {
    type: 'impression' as const,
    encoding: 'json' as const,
    contentEncoding: 'identity' as const,
    maxBytes: 1 << 26,
    maxEvents: EVENTS,
    ingestTime: (events[EVENTS - 1]!.event_time as number) + 1000,
    source: 'bench',
  }
  return { body, options }
}

/**
 * JSON bodies take the transcoder, which has no event objects: the rules read a projection of
 * each event that the transcoder materializes. How much of the rule cost that is, apart from
 * evaluating the rules.
 */
async function projectionCase(fields: readonly string[], h: HarnessOptions): Promise<BenchResult[]> {
  const { body, options } = impressionsBody(4100)
  const path = nativeStatus().native ? 'native transcoder' : 'JS transcoder'
  const [projected, plain] = await measure(
    [
      {
        name: `${path} + projection of the rules' fields`,
        events: EVENTS,
        bytes: 0,
        fn: () => transcodeBody(body, options, fields),
      },
      { name: `${path}, no projection`, events: EVENTS, bytes: 0, fn: () => transcodeBody(body, options) },
    ],
    h,
  )
  const name = `quality rules, impressions as json ×${EVENTS}: ${projected!.name} vs ${plain!.name}`
  return withCost(
    name,
    'projection cost',
    '% of transcode throughput',
    projected!.eventsPerSec,
    plain!.eventsPerSec,
  )
}

/** The candidate against the base in events/s, and its extra work as a share of the base's throughput. */
function withCost(
  name: string,
  metric: string,
  unit: string,
  candidate: number,
  base: number,
): BenchResult[] {
  return [
    compared(name, 'events/s', 'events/s/core', candidate, base),
    { case: name, metric, value: (1 - candidate / base) * 100, unit },
  ]
}

/** The JS decoder's path (no native addon): rules on its event objects, nothing to project. */
async function jsPathCase(
  rules: ReturnType<typeof compileRules>['byType']['impression'] & object,
  h: HarnessOptions,
) {
  const { body, options } = impressionsBody(4200)
  const decode = () => {
    const r = decodeBody(body, options)
    if (!r.ok) throw new Error(r.error.detail)
    return r.events
  }
  const [withRules, without] = await measure(
    [
      {
        name: 'JS decoder + default rules',
        events: EVENTS,
        bytes: 0,
        fn: () => {
          const evs = decode()
          for (let i = 0; i < evs.length; i++) rules.evaluate(evs[i] as Record<string, unknown>)
        },
      },
      { name: 'JS decoder, no rules', events: EVENTS, bytes: 0, fn: decode },
    ],
    h,
  )
  const name = `quality rules, impressions as json ×${EVENTS}: ${withRules!.name} vs ${without!.name}`
  return withCost(name, 'rule cost', '% of decode throughput', withRules!.eventsPerSec, without!.eventsPerSec)
}

/** Per task: the channel's sequence check against a structured clone of the rules in the task. */
async function deliveryCases(rules: readonly Rule[], h: HarnessOptions): Promise<BenchResult[]> {
  const channel = RulesChannel.create()
  channel.publish(rules)
  attachRulesChannel(channel.buffer)
  activeRules()
  const [shared, cloned] = await measure(
    [
      { name: 'shared-memory channel check', events: 1, bytes: 0, fn: () => activeRules() },
      { name: 'rules cloned into the task', events: 1, bytes: 0, fn: () => structuredClone(rules) },
    ],
    h,
  )
  useRules(null)
  return [
    compared(
      `quality rules delivery per task: ${shared!.name} vs ${cloned!.name}`,
      'tasks/s',
      'tasks/s/core',
      shared!.eventsPerSec,
      cloned!.eventsPerSec,
    ),
  ]
}
