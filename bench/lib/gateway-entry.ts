import { untilSignal } from '../../cli/until-signal.js'
import { loadConfig } from '../../config/config.js'
import { createLogger } from '../../config/logger.js'
import { startGateway } from '../../gateway/server.js'
import { warmUpBodies } from '../../generator/warm-up-bodies.js'

/**
 * `node dist/bench/lib/gateway-entry.js on|off`: the gateway as `adgate gateway` runs it, with its
 * metrics on, or with every metric a no-op and nothing collected (bench/metrics.ts compares them).
 * Configured from the environment like the CLI.
 */
const config = loadConfig()
const logger = createLogger(config.logLevel, 'adgate-gateway')
const gateway = await startGateway(config, logger, config.kafkaBrokers ?? null, {
  metrics: process.argv[2] !== 'off',
  warmUp: warmUpBodies(),
})
await untilSignal(logger, () => gateway.close())
process.exit(0)
