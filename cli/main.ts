import { type Config, isConfigError, loadConfig, settingsHelp } from '../config/config.js'
import { createLogger, type Logger } from '../config/logger.js'
import { startGateway } from '../gateway/server.js'
import { warmUpBodies } from '../generator/warm-up-bodies.js'
import { runAll } from './all.js'
import { CORRELATOR_HELP, runCorrelatorCommand } from './correlator.js'
import { gen, UsageError } from './gen.js'
import { assertNativeBindings } from './native-bindings.js'
import { query } from './query.js'
import { spool } from './spool.js'
import { untilSignal } from './until-signal.js'

const HELP = `adgate — ingestion gateway for ad-tech events

Usage: adgate <command> [options]

Commands:
  gateway      HTTP/WebSocket edge on PORT, writing to Kafka (KAFKA_BROKERS)
  all          the whole pipeline on one machine: with KAFKA_BROKERS unset, the embedded mode
               (no Kafka; events are durable in the local spool under ADGATE_DATA_DIR)
  correlator   joins, attribution and campaign aggregates to storage (adgate correlator --help)
  query        campaign performance from storage (adgate query --help)
  gen          generated events (adgate gen --help)
  spool        export the spool's quarantine: acknowledged events Kafka refused (adgate spool --help)

Options:
  --help       this text; \`adgate gen --help\` for the generator

${settingsHelp()}`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP)
    return command === undefined ? 2 : 0
  }
  switch (command) {
    case 'gen':
      return gen(rest)
    case 'gateway':
    case 'all': {
      if (answeredHelp(command, rest, HELP)) return 0
      const config = loadConfig()
      assertNativeBindings()
      if (command === 'all') return runAll(config, createLogger(config.logLevel, 'adgate'))
      if (!config.kafkaBrokers) {
        throw new UsageError(
          'KAFKA_BROKERS is required for `adgate gateway` (`adgate all` runs without Kafka)',
        )
      }
      return runGateway(config, createLogger(config.logLevel, 'adgate-gateway'), config.kafkaBrokers)
    }
    case 'correlator': {
      if (answeredHelp(command, rest, CORRELATOR_HELP)) return 0
      const config = loadConfig()
      return runCorrelatorCommand(config, createLogger(config.logLevel, 'adgate-correlator'))
    }
    case 'query':
      return query(rest, loadConfig())
    case 'spool':
      return spool(rest, loadConfig())
    default:
      process.stderr.write(`adgate: unknown command ${JSON.stringify(command)}\n\n${HELP}`)
      return 2
  }
}

/** gateway, all and correlator take their settings from the environment: --help, or no argument. */
function answeredHelp(command: string, rest: string[], help: string): boolean {
  if (rest.length === 0) return false
  if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) {
    process.stdout.write(help)
    return true
  }
  throw new UsageError(
    `${command} takes no arguments, got ${JSON.stringify(rest.join(' '))} (settings are environment variables: adgate --help)`,
  )
}

async function runGateway(config: Config, logger: Logger, brokers: string[]): Promise<number> {
  const gateway = await startGateway(config, logger, brokers, { warmUp: warmUpBodies() })
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host
  logger.info(`post events to http://${host}:${gateway.port}/v1/impressions`)
  await untilSignal(logger, () => gateway.close())
  return 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (isConfigError(err) || err instanceof UsageError)
      process.stderr.write(`adgate: ${(err as Error).message}\n`)
    else process.stderr.write(`adgate: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(err instanceof UsageError || isConfigError(err) ? 2 : 1)
  },
)
