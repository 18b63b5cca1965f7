import type { Logger } from '../config/logger.js'
import type { GatewayMetrics } from './metrics.js'
import { errorReply, type Reply } from './responses.js'

/**
 * A route's answer, the same for POST, WebSocket and trackers: `work`'s reply, or 503 if it failed
 * unexpectedly (logged with its stack); timed from receipt for adgate_http_request_duration_seconds.
 * Never rejects.
 */
export async function answer(
  work: Promise<Reply>,
  route: string,
  receivedAt: number,
  requestId: string,
  deps: { readonly metrics: GatewayMetrics; readonly logger: Logger },
): Promise<Reply> {
  let reply: Reply
  try {
    reply = await work
  } catch (err) {
    deps.logger.error({ err, requestId, route }, 'request failed unexpectedly')
    reply = errorReply('NOT_DURABLE', 'internal error', requestId)
  }
  deps.metrics.series.duration(route, reply.status).observe((Date.now() - receivedAt) / 1000)
  return reply
}
