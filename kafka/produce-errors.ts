import { protocolErrors, protocolErrorsCodesById } from '@platformatic/kafka'

/**
 * What a Produce error code means for the batch that got it, decided from @platformatic/kafka's
 * table of Kafka error codes (generated from Kafka's sources, with its `canRetry` flag) rather
 * than from a hand-kept list:
 *   - ok: written (DUPLICATE_SEQUENCE_NUMBER: written by an earlier attempt);
 *   - retry: send the same bytes again, with the same sequence, after a metadata refresh;
 *   - resequence: the broker lost track of this producer's sequence for the partition: the
 *     partition's lane starts again under a new producer id;
 *   - unauthorized: an ACL or the credentials are wrong: no retry helps until an operator acts;
 *   - too-large / refused: Kafka will never accept these bytes.
 */
export type ProduceFate = 'ok' | 'retry' | 'resequence' | 'unauthorized' | 'too-large' | 'refused'

const UNAUTHORIZED = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'SASL_AUTHENTICATION_FAILED',
])
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'])
const RESEQUENCE = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH'])

type ErrorId = keyof typeof protocolErrors

export function produceFate(code: number): ProduceFate {
  if (code === 0) return 'ok'
  const id = (protocolErrorsCodesById as Record<number, ErrorId | undefined>)[code]
  // A code newer than the table: retrying until the ack deadline never loses an event.
  if (id === undefined) return 'retry'
  if (id === 'DUPLICATE_SEQUENCE_NUMBER') return 'ok'
  if (RESEQUENCE.has(id)) return 'resequence'
  if (UNAUTHORIZED.has(id)) return 'unauthorized'
  if (TOO_LARGE.has(id)) return 'too-large'
  return protocolErrors[id].canRetry ? 'retry' : 'refused'
}

/** The Kafka name of an error code, for messages and logs. */
export function kafkaErrorName(code: number): string {
  return (protocolErrorsCodesById as Record<number, string | undefined>)[code] ?? `error ${code}`
}
