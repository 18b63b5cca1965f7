// Starts the real gateway (the compiled CLI) as a child process for integration tests.
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect } from 'vitest'
import { spawnCli } from './cli-process.js'

export interface RunningGateway {
  readonly url: string
  readonly port: number
  readonly process: ChildProcess
  /** Everything the gateway logged so far. */
  readonly logs: () => string
  /** SIGTERM, then wait for exit; returns the exit code (or the signal that ended it). */
  stop(signal?: NodeJS.Signals): Promise<number | NodeJS.Signals>
}

export async function startGateway(
  brokers: string[],
  env: Record<string, string> = {},
): Promise<RunningGateway> {
  const gateway = spawnCli('gateway', {
    KAFKA_BROKERS: brokers.join(','),
    PORT: '0',
    HOST: '127.0.0.1',
    ADGATE_WORKERS: '1',
    // Functional tests need no warm JIT: ready at once (test/gateway/warm-up.test.ts turns it on).
    ADGATE_WARMUP_MS: '0',
    LOG_LEVEL: 'info',
    // Each gateway gets its own spool, so parallel test files never share one.
    ADGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'adgate-test-')),
    ...env,
  })
  const port = await gateway.listening('gateway')
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    process: gateway.child,
    logs: gateway.output,
    stop: async (signal = 'SIGTERM') => {
      if (gateway.child.exitCode === null) gateway.child.kill(signal)
      return gateway.exited
    },
  }
}

/**
 * Call inside a describe: a gateway started before the block's tests and stopped after them, where
 * it must exit 0. The object returned is that running gateway once the tests run.
 */
export function gatewayForBlock(brokers: string[], env: Record<string, string> = {}): RunningGateway {
  const gw = {} as RunningGateway
  beforeAll(async () => {
    Object.assign(gw, await startGateway(brokers, env))
  })
  afterAll(async () => {
    if (gw.stop !== undefined) expect(await gw.stop()).toBe(0)
  })
  return gw
}

export interface Posted {
  status: number
  headers: Headers
  body: Record<string, unknown>
}

export async function post(
  url: string,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<Posted> {
  const res = await fetch(url, { method: 'POST', body, headers })
  const text = await res.text()
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = { raw: text }
  }
  return { status: res.status, headers: res.headers, body: parsed }
}
