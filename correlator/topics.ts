import { EVENT_INFO } from '../events/catalog.js'

/**
 * The correlator's own re-keyed topics (Kafka Streams' repartition topics). Each join stage's
 * inputs must be keyed by that stage's join id; clicks carry no auction id and conversions no
 * impression id, so stage 1 re-keys impressions by impression id and stage 2 re-keys clicks by
 * click id. Same partition count as the event topics, murmur2 keys, JSON values.
 */
export const REKEYED_IMPRESSIONS = 'adgate.correlator.impressions'
export const REKEYED_CLICKS = 'adgate.correlator.clicks'
export const INTERNAL_TOPICS = [REKEYED_IMPRESSIONS, REKEYED_CLICKS] as const

export const SOURCE_TOPICS = [
  EVENT_INFO.bid.topic,
  EVENT_INFO.impression.topic,
  EVENT_INFO.click.topic,
  EVENT_INFO.conversion.topic,
] as const

/** The names a correlator reads and writes; a prefix isolates test runs on a shared broker. */
export interface TopicNames {
  bid: string
  impression: string
  click: string
  conversion: string
  rekeyedImpressions: string
  rekeyedClicks: string
}

export function topicNames(prefix = ''): TopicNames {
  return {
    bid: prefix + EVENT_INFO.bid.topic,
    impression: prefix + EVENT_INFO.impression.topic,
    click: prefix + EVENT_INFO.click.topic,
    conversion: prefix + EVENT_INFO.conversion.topic,
    rekeyedImpressions: prefix + REKEYED_IMPRESSIONS,
    rekeyedClicks: prefix + REKEYED_CLICKS,
  }
}

export function sourceTopics(n: TopicNames): string[] {
  return [n.bid, n.impression, n.click, n.conversion]
}

/** Topics a correlator instance reads: with re-keying through Kafka, its own topics too. */
export function inputTopics(rekeyThroughKafka: boolean, n: TopicNames = topicNames()): string[] {
  const source = sourceTopics(n)
  return rekeyThroughKafka ? [...source, n.rekeyedImpressions, n.rekeyedClicks] : source
}
