import type { AuthError, Principal } from './auth.js'
import { errorReply, type Reply } from './responses.js'

/** One text per authentication error, whichever route (POST, WebSocket, tracker) refuses. */
const AUTH_DETAIL: Readonly<Record<AuthError, (type: string) => string>> = {
  MISSING_API_KEY: () => 'send X-API-Key: <secret> or Authorization: Bearer <secret>',
  UNKNOWN_API_KEY: () => 'the API key is not one of ADGATE_API_KEYS',
  EVENT_TYPE_NOT_ALLOWED: (type) => `this key may not send ${type} events`,
}

type Headers = Readonly<Record<string, string>>

/** The answer to a request whose key failed: 401 or 403 from the error table. */
export function authRefusal(error: AuthError, type: string, requestId: string, headers?: Headers): Reply {
  return errorReply(error, AUTH_DETAIL[error](type), requestId, {}, headers)
}

/** 429 with Retry-After when the key is over its rate (this takes a token when not), else null. */
export function rateRefusal(principal: Principal, requestId: string, headers?: Headers): Reply | null {
  const wait = principal.bucket?.take() ?? 0
  if (wait === 0) return null
  return errorReply(
    'RATE_LIMITED',
    `key ${principal.name} is over its rate`,
    requestId,
    {},
    {
      ...headers,
      'Retry-After': String(wait),
    },
  )
}
