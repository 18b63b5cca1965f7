// Refusals on the secured three-broker cluster, under load: a wrong password (then corrected in
// its file, which is read at each authentication), a plaintext client against the TLS listener,
// a user without ACLs, and a topic whose max.message.bytes is below adgate's batches. None may
// turn into 200s from the spool: the answers are 503 (or 413 for events Kafka can never take),
// /readyz says not ready while Kafka refuses adgate, nothing is spooled, and every event that was
// acknowledged is in Kafka in order.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Admin } from '@platformatic/kafka'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EVENT_INFO, type EventType } from '../../events/catalog.js'
import type { RunningGateway } from '../support/gateway.js'
import { clusterClientOptions, type KafkaCluster, requiredCluster } from '../support/kafka-cluster.js'
import type { ClusterNodes } from './support/cluster-nodes.js'
import { Load, sleep, waitFor } from './support/load.js'
import { metric, ReadyPoller } from './support/observe.js'
import { Rig, scenarioDetail } from './support/rig.js'
import { expectAnswered, type Recorded, Recording } from './support/verify.js'

const cluster = requiredCluster()

const REFUSED_MS = 8_000
// below one compressed batch of ten impressions (lz4: ~1 KiB), above Kafka's per-batch overhead
const SMALL_MAX_MESSAGE_BYTES = 300

interface Refusal {
  readonly name: string
  readonly title: string
  /** gateway settings that make Kafka refuse it (writes files into `dir` if needed) */
  env(c: KafkaCluster, dir: string): Record<string, string>
  /** settings of the cluster's usual ones left out */
  readonly unset?: readonly string[]
  /** answers allowed while refused */
  readonly refusedOutcomes: readonly string[]
  /** the event types posted */
  readonly types?: readonly EventType[]
  /** true: /readyz must say not ready while refused */
  readonly notReady: boolean
  /** a known defect of the gateway this scenario shows: skipped loudly until it is fixed */
  readonly knownDefect?: string
  /** undo the refusal while the gateway runs; resolves when done (none: it stays refused) */
  fix?(c: KafkaCluster, dir: string): Promise<void>
}

const REFUSALS: readonly Refusal[] = [
  {
    name: 'cluster-wrong-password',
    title: 'a wrong SCRAM password, then the right one written to the password file',
    env: (_c, dir) => {
      writeFileSync(join(dir, 'password'), 'not-the-password\n')
      return { KAFKA_SASL_PASSWORD_FILE: join(dir, 'password') }
    },
    refusedOutcomes: ['503 KAFKA_UNAUTHORIZED'],
    notReady: true,
    async fix(c, dir) {
      writeFileSync(join(dir, 'password'), `${c.users.adgate.password}\n`)
    },
  },
  {
    name: 'cluster-plaintext-client',
    title: 'a PLAINTEXT client against the SASL_SSL listener',
    env: () => ({ KAFKA_SECURITY_PROTOCOL: 'PLAINTEXT' }),
    unset: ['KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD_FILE', 'KAFKA_SSL_CA_FILE'],
    // was: every request 200 from the spool and /readyz ready (kafka/listener-probe.ts now names it)
    refusedOutcomes: ['503 KAFKA_UNAUTHORIZED'],
    notReady: true,
  },
  {
    name: 'cluster-missing-acl',
    title: 'a user that authenticates but has no ACLs',
    env: (c) => ({
      KAFKA_SASL_USERNAME: c.users.noacl.username,
      KAFKA_SASL_PASSWORD_FILE: c.users.noacl.passwordFile,
    }),
    refusedOutcomes: ['503 KAFKA_UNAUTHORIZED'],
    notReady: true,
  },
  {
    name: 'cluster-message-too-large',
    title: `a topic refusing messages over ${SMALL_MAX_MESSAGE_BYTES} bytes (max.message.bytes), other topics unaffected`,
    env: () => ({}),
    types: ['impression', 'bid'],
    refusedOutcomes: ['413 EVENTS_TOO_LARGE_FOR_KAFKA', '503 KAFKA_REFUSED'],
    notReady: false,
  },
]

/** Sets (or with null removes) a topic config as the admin user. */
async function topicConfig(
  c: KafkaCluster,
  topic: string,
  name: string,
  value: string | null,
): Promise<void> {
  const admin = new Admin({ clientId: 'adgate-fault-control', ...clusterClientOptions(c, 'admin') })
  try {
    await admin.incrementalAlterConfigs({
      resources: [
        {
          resourceType: 2,
          resourceName: topic,
          configs: [value === null ? { name, configOperation: 1 } : { name, configOperation: 0, value }],
        },
      ],
    })
  } finally {
    await admin.close()
  }
}

for (const refusal of REFUSALS) {
  const title = refusal.knownDefect
    ? `!!! SKIPPED, KNOWN DEFECT: ${refusal.knownDefect} !!! refusal on the secured 3-broker cluster: ${refusal.title}`
    : `refusal on the secured 3-broker cluster: ${refusal.title}`
  describe.skipIf(!cluster || refusal.knownDefect !== undefined)(title, () => {
    let rig: Rig<ClusterNodes>
    let gw: RunningGateway
    let load: Load
    let ready: ReadyPoller
    let r: Recorded
    const t = { refused: 0, fixed: 0, firstAckAfterFix: 0 }
    let spooledEvents = -1
    const tooLarge = refusal.name === 'cluster-message-too-large'
    Recording.reportAfterAll(() => r)

    beforeAll(async () => {
      const c = cluster!
      rig = await Rig.onCluster(c, { topics: true })
      const recording = await Recording.begin(rig, refusal.name)
      if (tooLarge)
        await topicConfig(
          c,
          EVENT_INFO.impression.topic,
          'max.message.bytes',
          String(SMALL_MAX_MESSAGE_BYTES),
        )
      const dir = rig.dataDir()
      gw = await rig.gateway(refusal.env(c, dir), refusal.unset)
      load = new Load(gw.url, {
        run: recording.run,
        clients: 2,
        pauseMs: 100,
        maxEvents: 4000,
        types: refusal.types ?? ['impression'],
      })
      ready = new ReadyPoller(() => gw.url, 250)
      const detail = scenarioDetail(t, load, gw)
      t.refused = Date.now()
      load.start()
      try {
        await sleep(REFUSED_MS)
        spooledEvents = await metric(gw.url, 'adgate_spool_events')
        if (refusal.fix) {
          await refusal.fix(c, dir)
          t.fixed = Date.now()
          await waitFor(
            'a 200 after the fix',
            () => load.answered((e) => e.sentAt > t.fixed && e.status === 200),
            60_000,
            detail,
          )
          t.firstAckAfterFix = Math.min(
            ...load
              .acked()
              .filter((e) => e.sentAt > t.fixed)
              .map((e) => e.answeredAt),
          )
        }
      } finally {
        await load.stop()
        await ready.stop()
        if (tooLarge) await topicConfig(c, EVENT_INFO.impression.topic, 'max.message.bytes', null)
      }
      r = await recording.end(load, [gw], () => ({
        refused_ms: (t.fixed || Date.now()) - t.refused,
        spooled_events_while_refused: spooledEvents,
        time_to_recover_ms: t.fixed ? t.firstAckAfterFix - t.fixed : null,
        healthy_topic_refusals: tooLarge
          ? load.exchanges.filter((e) => e.type !== 'impression' && e.status === 413).length
          : 0,
      }))
    }, 240_000)

    afterAll(async () => {
      await rig?.release()
    }, 180_000)

    const whileRefused = () =>
      load.exchanges.filter((e) => e.sentAt >= t.refused && (!t.fixed || e.answeredAt < t.fixed))

    it('answers every request in time, and never 200 for what Kafka refuses', () => {
      const refusedType = tooLarge ? 'impression' : null
      expectAnswered(load, (e, o) => {
        // Other topics go on, even for bids decoded in one task with refused impressions: each
        // event type's limit is its own topic's (healthy_topic_refusals was > 0 before that).
        if (refusedType !== null && e.type !== refusedType) return o === '200'
        // after the fix, the refusal may still be answered until the next authentication succeeds
        return refusal.refusedOutcomes.includes(o) || (t.fixed > 0 && e.sentAt >= t.fixed && o === '200')
      })
      expect(whileRefused().length).toBeGreaterThan(5)
    })

    it('spools nothing it was refused', () => {
      expect(spooledEvents).toBe(0)
    })

    it.runIf(refusal.notReady)('says not ready on /readyz while Kafka refuses adgate', () => {
      const late = ready.samples.filter(
        (s) => s.at > t.refused + REFUSED_MS / 2 && (!t.fixed || s.at < t.fixed),
      )
      expect(late.length).toBeGreaterThan(3)
      expect(late.filter((s) => s.r?.ready !== false)).toEqual([])
    })

    it('loses no acknowledged event and keeps order', () => {
      expect(r.fig.missing).toBe(0)
      expect(r.fig.order_violations).toBe(0)
      if (refusal.fix || tooLarge) expect(r.fig.events_acked).toBeGreaterThan(0)
    })
  })
}
