import { Gauge } from 'prom-client'
import type { Config } from '../config/config.js'
import type { Logger } from '../config/logger.js'
import type { EventType } from '../events/catalog.js'
import { RulesChannel } from '../quality/rules-channel.js'
import { loadRules, RulesWatcher, rulesPath } from '../quality/rules-file.js'
import { QualityScores, SCORE_WINDOWS, type ScoreWindow } from '../quality/scores.js'
import type { BodyOutcome } from '../workers/decode-task.js'
import type { GatewayMetrics } from './metrics.js'

/**
 * The gateway's side of data quality: loads the rules file at start-up (a bad file stops the
 * start with the file, rule and field named), publishes it to the decoder workers, re-reads it on
 * change, and turns each request's verdict counts into the per-source quality metrics.
 */
export class GatewayQuality {
  readonly channel = RulesChannel.create()
  readonly path: string | null
  readonly ruleCount: number
  private readonly watcher: RulesWatcher | null
  private readonly scores = new QualityScores()
  /** Label sets of adgate_quality_score written at the last scrape, to remove stale ones. */
  private shown = new Set<string>()

  constructor(
    config: Config,
    private readonly metrics: GatewayMetrics,
    logger: Logger,
  ) {
    this.path = rulesPath(config.qualityRules)
    const rules = this.path === null ? null : loadRules(this.path)
    this.ruleCount = rules?.length ?? 0
    this.channel.publish(rules)
    // Set from the windowed scores by prom-client's collect() at each scrape.
    const score: Gauge<'source' | 'type' | 'window'> = new Gauge({
      name: 'adgate_quality_score',
      help: 'Share of checked events that passed every rule over the window (1m, 1h), by source and type; absent without events in the window',
      labelNames: ['source', 'type', 'window'] as const,
      registers: metrics.enabled ? [metrics.registry] : [],
      collect: () => this.collect(score),
    })
    metrics.qualityThreshold.set({ level: 'healthy' }, config.qualityHealthy)
    metrics.qualityThreshold.set({ level: 'minimum' }, config.qualityMinimum)
    // Both series exist from the start, so rate() and increase() see the first reload.
    metrics.qualityReloads.inc({ result: 'ok' }, 0)
    metrics.qualityReloads.inc({ result: 'failed' }, 0)
    this.watcher =
      this.path === null
        ? null
        : new RulesWatcher(this.path, this.channel, logger, (ok) =>
            metrics.qualityReloads.inc({ result: ok ? 'ok' : 'failed' }),
          )
    this.watcher?.start()
  }

  /** Once per decoded body. */
  observe(source: string, type: EventType, outcome: BodyOutcome): void {
    if (outcome.error !== null) return
    const checked = outcome.events + outcome.ruleRejects
    if (checked === 0) return
    const passed = checked - outcome.flagged - outcome.ruleRejects
    const verdicts = this.metrics.series.quality(source, type)
    if (passed > 0) verdicts.passed.inc(passed)
    if (outcome.flagged > 0) verdicts.flagged.inc(outcome.flagged)
    if (outcome.ruleRejects > 0) verdicts.rejected.inc(outcome.ruleRejects)
    this.scores.add(`${source}\u0000${type}`, checked, passed)
  }

  /** At scrape time: the windowed scores into their gauge. */
  private collect(gauge: Gauge<'source' | 'type' | 'window'>, now = Date.now()): void {
    const shown = new Set<string>()
    for (const key of this.scores.keys()) {
      const [source, type] = key.split('\u0000') as [string, string]
      for (const window of Object.keys(SCORE_WINDOWS) as ScoreWindow[]) {
        const s = this.scores.score(key, window, now)
        const labels = { source, type, window }
        if (s === null) continue
        gauge.set(labels, s)
        shown.add(JSON.stringify(labels))
      }
    }
    for (const old of this.shown) if (!shown.has(old)) gauge.remove(JSON.parse(old))
    this.shown = shown
  }

  close(): void {
    this.watcher?.close()
  }
}
