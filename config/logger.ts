import pino from 'pino'

/**
 * Structured JSON logs: one line per lifecycle event and per error, never per event on the hot
 * path. API keys are logged by name only; the redaction list is a second line of defence.
 */
export type Logger = pino.Logger

export function createLogger(level: string, name: string): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['secret', '*.secret', 'apiKey', '*.apiKey', 'headers["x-api-key"]', 'headers.authorization'],
      censor: '[redacted]',
    },
  })
}
