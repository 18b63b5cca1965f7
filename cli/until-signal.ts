import type { Logger } from '../config/logger.js'

/** Run until SIGTERM or SIGINT, then `close` (graceful); a second signal exits at once. */
export function untilSignal(logger: Logger, close: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down')
      process.once(signal, () => process.exit(1))
      void close().then(resolve)
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
}
