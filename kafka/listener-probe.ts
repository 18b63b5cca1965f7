import { connect } from 'node:net'

/** What a broker did with a plaintext ApiVersions request. */
export type PlaintextAnswer = 'answered' | 'closed' | 'unreachable'

/**
 * Asks one broker for ApiVersions v0 over plain TCP. A TLS listener reads the request as a broken
 * TLS record and closes the connection without a word: accepted, then closed before any answer,
 * which no outage explains (a stopped broker refuses the connection, a stuck one never answers).
 */
export function probePlaintext(host: string, port: number, timeoutMs: number): Promise<PlaintextAnswer> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    let connected = false
    const finish = (answer: PlaintextAnswer) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    const timer = setTimeout(() => finish('unreachable'), timeoutMs)
    socket.once('connect', () => {
      connected = true
      // size, then header v1: api_key 18 (ApiVersions), api_version 0, correlation_id 1, client_id ""
      const request = Buffer.alloc(14)
      request.writeInt32BE(10, 0)
      request.writeInt16BE(18, 4)
      request.writeInt16BE(0, 6)
      request.writeInt32BE(1, 8)
      request.writeInt16BE(0, 12)
      socket.write(request)
    })
    socket.once('data', () => finish('answered'))
    socket.once('error', () => finish(connected ? 'closed' : 'unreachable'))
    socket.once('close', () => finish(connected ? 'closed' : 'unreachable'))
  })
}

/**
 * The security problem behind a plaintext client's failure to reach any broker, or null: every
 * broker that accepted the connection closed it unanswered, and none answered.
 */
export async function plaintextListenerMismatch(
  brokers: readonly string[],
  timeoutMs: number,
): Promise<string | null> {
  const answers = await Promise.all(
    brokers.map((b) => {
      const colon = b.lastIndexOf(':')
      return probePlaintext(b.slice(0, colon), Number(b.slice(colon + 1)), timeoutMs)
    }),
  )
  if (answers.includes('answered') || !answers.includes('closed')) return null
  return 'the brokers close plaintext connections without answering: their listener expects TLS; check KAFKA_SECURITY_PROTOCOL (SSL or SASL_SSL) and KAFKA_SSL_CA_FILE'
}
