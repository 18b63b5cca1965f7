/**
 * The Kafka protocol error codes in a @platformatic/kafka error and the errors it wraps (a
 * response error carries one per failed topic or partition; "cannot connect to any broker" one
 * per broker). Callers decide by code, never by message text.
 */
export function kafkaApiCodes(err: unknown): number[] {
  if (typeof err !== 'object' || err === null) return []
  const { apiCode, errors, cause } = err as { apiCode?: unknown; errors?: unknown; cause?: unknown }
  const own = typeof apiCode === 'number' ? [apiCode] : []
  const wrapped = Array.isArray(errors) ? errors.flatMap(kafkaApiCodes) : []
  return [...own, ...wrapped, ...(cause === undefined ? [] : kafkaApiCodes(cause))]
}
