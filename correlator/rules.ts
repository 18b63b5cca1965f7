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

export const DEFAULT_BOT_AGENTS = [
  'bot',
  'crawler',
  'spider',
  'python-requests',
  'curl/',
  'wget/',
  'headlesschrome',
  'phantomjs',
  'go-http-client',
  'java/',
  'okhttp',
] as const

export const DEFAULT_RULES: JoinRules = Object.freeze({
  impressionWindowMs: 10 * 60_000,
  clickWindowMs: 30 * 60_000,
  conversionWindowMs: 7 * 24 * 3_600_000,
  graceMs: 5 * 60_000,
  minClickDelayMs: 1000,
  botAgents: DEFAULT_BOT_AGENTS,
})

export function isBotAgent(rules: JoinRules, userAgent: string | null | undefined): boolean {
  if (!userAgent) return false
  const ua = userAgent.toLowerCase()
  for (const needle of rules.botAgents) if (ua.includes(needle)) return true
  return false
}

/** Aggregate buckets: UTC minute and hour starts, epoch ms. */
export const MINUTE_MS = 60_000
export const HOUR_MS = 3_600_000
