import pino from 'pino'
import pretty from 'pino-pretty'

/**
 * Structured JSON logs: one line per lifecycle event and per error, never per event on the hot
 * path. API keys are logged by name only; the redaction list is a second line of defence.
 * Errors are logged as `{ err }`: pino's serializer keeps their type, stack and cause.
 * On a terminal the same records print as readable lines (pino-pretty); anywhere else (files,
 * pipes, log shippers) they stay one JSON object per line.
 */
export type Logger = pino.Logger

/** Where records go; a terminal (isTTY) gets readable lines. */
export type LogDestination = NodeJS.WritableStream & { readonly isTTY?: boolean }

export function createLogger(level: string, name: string, out: LogDestination = process.stdout): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['secret', '*.secret', 'apiKey', '*.apiKey', 'headers["x-api-key"]', 'headers.authorization'],
      censor: '[redacted]',
    },
  }
  // Synchronous, in this thread: a crash still prints its last lines, and no transport worker starts.
  return out.isTTY === true
    ? pino(options, pretty({ sync: true, ignore: 'service', destination: out }))
    : pino(options, out === process.stdout ? undefined : out)
}
