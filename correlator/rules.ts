import { type Config, loadConfig } from '../config/config.js'

// Declaration mirrored in test/support/reference.ts: the reference correlator declares the rules on its own, as an oracle.
/**
 * The rules every join and flag follows. The correlator and the plain-SQL reference in the tests
 * implement exactly these; the README's "How the correlator works" states them for users.
 */
export interface JoinRules {
  /** An impression joins its bid when 0 ≤ impression.time − bid.time ≤ this. */
  readonly impressionWindowMs: number
  /** A click joins its impression when 0 ≤ click.time − impression.time ≤ this. */
  readonly clickWindowMs: number
  /** A conversion joins its click when 0 ≤ conversion.time − click.time ≤ this. */
  readonly conversionWindowMs: number
  /** How far behind the newest event of its partition an event may be and still count. */
  readonly graceMs: number
  /** A click sooner than this after its impression is flagged too_soon. */
  readonly minClickDelayMs: number
  /** Lower-case substrings of user agents flagged as bots / data-centre traffic. */
  readonly botAgents: readonly string[]
}

/** The rules a configuration asks for (ADGATE_*_WINDOW, ADGATE_GRACE, ADGATE_MIN_CLICK_DELAY, ADGATE_BOT_USER_AGENTS). */
export function rulesFrom(config: Config): JoinRules {
  return {
    impressionWindowMs: config.impressionWindow,
    clickWindowMs: config.clickWindow,
    conversionWindowMs: config.conversionWindow,
    graceMs: config.grace,
    minClickDelayMs: config.minClickDelay,
    botAgents: config.botUserAgents,
  }
}

/** The defaults are the settings' defaults, declared once in config/config.ts. */
export const DEFAULT_RULES: JoinRules = Object.freeze(rulesFrom(loadConfig({})))

export function isBotAgent(rules: JoinRules, userAgent: string | null | undefined): boolean {
  if (!userAgent) return false
  const ua = userAgent.toLowerCase()
  for (const needle of rules.botAgents) if (ua.includes(needle)) return true
  return false
}

/** Aggregate buckets: UTC minute and hour starts, epoch ms. */
export const MINUTE_MS = 60_000
export const HOUR_MS = 3_600_000
