import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Config, isConfigError, loadConfig, settingsHelp } from '../config/config.js'
import { createLogger } from '../config/logger.js'
import { assertNativeBindings } from '../decoders/native-bindings.js'
import { startGateway } from '../gateway/server.js'
import { gen, UsageError } from './gen.js'

const HELP = `adgate — ingestion gateway for ad-tech events

Usage: adgate <command> [options]

Commands:
  gateway      HTTP/WebSocket edge on PORT, writing to Kafka (KAFKA_BROKERS)
  all          the whole pipeline on one machine (today: the gateway, plus the local Kafka
               broker when KAFKA_BROKERS is unset)
  correlator   joins and aggregates to storage            (not built yet)
  query        campaign stats from storage                (not built yet)
  gen          generated events (adgate gen --help)

Options:
  --help       this text; \`adgate gen --help\` for the generator

${settingsHelp()}`

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

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
      if (rest.includes('--help')) {
        process.stdout.write(HELP)
        return 0
      }
      const config = loadConfig()
      assertNativeBindings()
      const logger = createLogger(config.logLevel, 'adgate-gateway')
      const brokers = config.kafkaBrokers ?? (command === 'all' ? startLocalKafka(logger) : undefined)
      if (!brokers)
        throw new UsageError('KAFKA_BROKERS is required for `adgate gateway` (or run `adgate all`)')
      return runGateway(config, logger, brokers)
    }
    case 'correlator':
    case 'query':
      process.stderr.write(
        `adgate ${command}: not built yet — the correlator and storage are the next milestone.\n`,
      )
      return 2
    default:
      process.stderr.write(`adgate: unknown command ${JSON.stringify(command)}\n\n${HELP}`)
      return 2
  }
}

// The embedded single-machine transport is not built yet; until it is, `adgate all` without
// KAFKA_BROKERS runs the same local broker the tests use (needs Java, as `npm run kafka:start`).
function startLocalKafka(logger: ReturnType<typeof createLogger>): string[] {
  logger.info('KAFKA_BROKERS is unset: starting the local Kafka broker (npm run kafka:start)')
  const result = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts', 'kafka.mjs'), 'start'], {
    stdio: 'inherit',
  })
  if (result.status !== 0)
    throw new UsageError('the local Kafka broker did not start; set KAFKA_BROKERS instead')
  return [`127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`]
}

async function runGateway(
  config: Config,
  logger: ReturnType<typeof createLogger>,
  brokers: string[],
): Promise<number> {
  const gateway = await startGateway(config, logger, brokers)
  logger.info(
    `post events to http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${gateway.port}/v1/impressions`,
  )
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down')
      process.once(signal, () => process.exit(1)) // a second signal does not wait
      void gateway.close().then(resolve)
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
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
