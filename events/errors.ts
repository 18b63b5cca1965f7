/**
 * Every rejection a client can see, in one table: a stable code, the HTTP status it maps to,
 * a message, and whether retrying the same request can succeed. The README's status table and
 * openapi.yaml are checked against this table by tests.
 */
export const ERRORS = {
  // The body as a whole
  MALFORMED_BODY: { status: 400, retryable: false, message: 'The body cannot be decoded' },
  INVALID_UTF8: { status: 400, retryable: false, message: 'The body is not valid UTF-8' },
  EMPTY_BODY: { status: 400, retryable: false, message: 'The body holds no events' },
  ALL_EVENTS_INVALID: { status: 400, retryable: false, message: 'Every event in the body is invalid' },
  MISSING_HEADER_ROW: { status: 400, retryable: false, message: 'CSV bodies need a header row' },
  SCHEMA_MISMATCH: {
    status: 400,
    retryable: false,
    message: "The Avro writer schema cannot be resolved against adgate's schema",
  },
  BODY_TOO_COSTLY: {
    status: 400,
    retryable: false,
    message: 'Decoding the body took more than its CPU budget (ADGATE_REQUEST_CPU_MS)',
  },
  BODY_TOO_LARGE: { status: 413, retryable: false, message: 'The body is larger than the limit' },
  TOO_MANY_EVENTS: { status: 413, retryable: false, message: 'The body holds more events than the limit' },
  EVENTS_TOO_LARGE_FOR_KAFKA: {
    status: 413,
    retryable: false,
    message:
      'The events are larger than Kafka accepts for their topic; none was accepted unless the detail names partitions that were',
  },
  HEADERS_TOO_LARGE: {
    status: 431,
    retryable: false,
    message: 'The request headers are larger than the limit',
  },
  UNSUPPORTED_CONTENT_TYPE: { status: 415, retryable: false, message: 'Unsupported Content-Type' },
  UNSUPPORTED_CONTENT_ENCODING: { status: 415, retryable: false, message: 'Unsupported Content-Encoding' },
  UNSUPPORTED_AVRO_CODEC: { status: 415, retryable: false, message: 'Unsupported Avro container codec' },
  // One event among others
  INVALID_EVENT: { status: 207, retryable: false, message: 'The event does not match the schema' },
  // Trackers (GET /v1/t/…)
  INVALID_QUERY: { status: 400, retryable: false, message: 'The query string cannot be read as one event' },
  REDIRECT_NOT_ALLOWED: {
    status: 400,
    retryable: false,
    message: 'The landing URL is neither signed nor on the redirect allow-list',
  },
  // Who is asking
  MISSING_API_KEY: { status: 401, retryable: false, message: 'An API key is required' },
  UNKNOWN_API_KEY: { status: 401, retryable: false, message: 'The API key is not known' },
  EVENT_TYPE_NOT_ALLOWED: {
    status: 403,
    retryable: false,
    message: 'The API key may not send this event type',
  },
  RATE_LIMITED: { status: 429, retryable: true, message: "Over the API key's rate limit" },
  // HTTP itself (RFC 9110/9112): answered before any route runs
  MALFORMED_REQUEST: {
    status: 400,
    retryable: false,
    message: 'The request is not valid HTTP/1.1 (RFC 9110/9112)',
  },
  URI_TOO_LONG: { status: 414, retryable: false, message: 'The request line is longer than the limit' },
  NOT_IMPLEMENTED: {
    status: 501,
    retryable: false,
    message: 'The method or transfer coding is not implemented',
  },
  HTTP_VERSION_NOT_SUPPORTED: {
    status: 505,
    retryable: false,
    message: 'Only HTTP/1.0 and HTTP/1.1 are served',
  },
  BAD_WEBSOCKET_HANDSHAKE: {
    status: 400,
    retryable: false,
    message: 'The WebSocket handshake is not valid (RFC 6455 §4.2.1)',
  },
  UPGRADE_REQUIRED: {
    status: 426,
    retryable: false,
    message: 'This route is a WebSocket: upgrade to websocket, version 13 (RFC 6455 §4.4)',
  },
  // Routing
  NOT_FOUND: { status: 404, retryable: false, message: 'No such route' },
  METHOD_NOT_ALLOWED: { status: 405, retryable: false, message: 'Method not allowed on this route' },
  REQUEST_TIMEOUT: { status: 408, retryable: true, message: 'The body did not arrive in time' },
  // Durability
  NOT_DURABLE: {
    status: 503,
    retryable: true,
    message: 'The events cannot be made durable right now; nothing from this request was accepted',
  },
  DRAINING: {
    status: 503,
    retryable: true,
    message: 'The gateway is shutting down; retry on another instance',
  },
  KAFKA_UNAUTHORIZED: {
    status: 503,
    retryable: true,
    message: "Kafka rejects adgate's credentials or permissions; nothing from this request was accepted",
  },
  KAFKA_REFUSED: {
    status: 503,
    retryable: false,
    message:
      'Kafka refused these events for good; none was accepted unless the detail names partitions that were',
  },
  WORKER_FAILED: {
    status: 503,
    retryable: true,
    message: 'Decoding failed inside the gateway; nothing was accepted',
  },
} as const

export type ErrorCode = keyof typeof ERRORS

/** A failure of a whole body (as opposed to one event in it). */
export interface BodyError {
  readonly code: ErrorCode
  /** Specific detail for a human, e.g. the parser's message with its position. */
  readonly detail: string
}

export function bodyError(code: ErrorCode, detail: string): BodyError {
  return { code, detail }
}
