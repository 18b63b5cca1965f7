// Starts the real gateway (the compiled CLI) as a child process for integration tests.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

export interface RunningGateway {
  readonly url: string
  readonly port: number
  readonly process: ChildProcess
  /** Everything the gateway logged so far. */
  readonly logs: () => string
  /** SIGTERM, then wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export async function startGateway(
  brokers: string[],
  env: Record<string, string> = {},
): Promise<RunningGateway> {
  const child = spawn(process.execPath, [cli, 'gateway'], {
    env: {
      PATH: process.env.PATH,
      KAFKA_BROKERS: brokers.join(','),
      PORT: '0',
      HOST: '127.0.0.1',
      ADGATE_WORKERS: '1',
      LOG_LEVEL: 'info',
      // Each gateway gets its own spool, so parallel test files never share one.
      ADGATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'adgate-test-')),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString()
  })
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${output}`)), 30_000)
    const look = () => {
      const m = /"port":(\d+)[^\n]*"msg":"gateway listening"/.exec(output)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout!.on('data', look)
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`gateway exited during start-up:\n${output}`))
    })
  })
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    process: child,
    logs: () => output,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal)
      return exited
    },
  }
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
