// The machine's services and tools that integration tests need, and how to get each: the global
// setup and the test files decide from these whether a suite runs, and the skip summary
// (test/support/skip-summary.ts) names the missing ones.
import { spawnSync } from 'node:child_process'

export interface Service {
  readonly name: string
  /** what the tests that need it cover, and how to install it */
  readonly needed: string
  readonly present: () => boolean
}

function runs(command: string, ...args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0
}

type ServiceName = 'java' | 'PostgreSQL' | 'prometheus' | 'promtool'

export const SERVICES: readonly (Service & { readonly name: ServiceName })[] = [
  {
    name: 'java',
    needed:
      'the local Kafka broker and the secured 3-node cluster, so every gateway, correlator, TLS/SASL and fault test (apt-get install openjdk-17-jre-headless)',
    present: () => runs('java', '-version'),
  },
  {
    name: 'PostgreSQL',
    needed: 'the PostgreSQL storage tests (apt-get install postgresql)',
    present: () => runs('pg_lsclusters', '-h'),
  },
  {
    name: 'prometheus',
    needed: 'the real-Prometheus scrape test (apt-get install prometheus)',
    present: () => runs('prometheus', '--version'),
  },
  {
    name: 'promtool',
    needed: 'the Prometheus rule tests (apt-get install prometheus)',
    present: () => runs('promtool', '--version'),
  },
]

export function missingServices(): Service[] {
  return SERVICES.filter((s) => !s.present())
}

const named = (name: ServiceName) => SERVICES.find((s) => s.name === name)!

/** Whether a service of SERVICES is on this machine: the same check the skip summary makes. */
export function present(name: ServiceName): boolean {
  return named(name).present()
}

/**
 * For a test file that needs the service: true when it is here. A missing one is an error in CI
 * (CI=true); elsewhere a loud warning that the file's tests are skipped.
 */
export function presentOrSkipped(name: ServiceName): boolean {
  if (present(name)) return true
  const { needed } = named(name)
  if (process.env.CI === 'true') throw new Error(`${name} is missing in CI (.ci/run installs it): ${needed}`)
  warnLoudly(`${name} not found: SKIPPING ${needed}`)
  return false
}

export function warnLoudly(message: string): void {
  const bar = '!'.repeat(78)
  console.warn(`\n${bar}\n!! ${message}\n${bar}\n`)
}
