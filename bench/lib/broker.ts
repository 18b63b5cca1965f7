// scripts/kafka.mjs is how the tools and the tests start, stop or probe a local single-node broker;
// this is the one place that runs it.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { REPO_ROOT } from './results.js'

export type BrokerCommand = 'start' | 'stop' | 'status'

/** Which broker: the shared one (127.0.0.1:9092, data under ./data) unless a port or data dir is given. */
export interface BrokerPlace {
  readonly port?: number
  /** ADGATE_DATA_DIR for the script: the broker lives in <dataDir>/kafka */
  readonly dataDir?: string
}

const SCRIPT = join(REPO_ROOT, 'scripts', 'kafka.mjs')

function scriptEnv(place: BrokerPlace): NodeJS.ProcessEnv {
  const env = { ...process.env }
  if (place.port !== undefined) env.KAFKA_PORT = String(place.port)
  if (place.dataDir !== undefined) env.ADGATE_DATA_DIR = place.dataDir
  return env
}

/** Runs the script to completion, its output on this terminal (or dropped); true when it exited 0. */
export function kafkaScriptSync(
  command: BrokerCommand,
  place: BrokerPlace = {},
  output: 'inherit' | 'ignore' = 'inherit',
): boolean {
  return (
    spawnSync(process.execPath, [SCRIPT, command], { cwd: REPO_ROOT, env: scriptEnv(place), stdio: output })
      .status === 0
  )
}

/** Runs the script without blocking; resolves with its exit code (null if it could not run) and its output. */
export function kafkaScript(
  command: BrokerCommand,
  place: BrokerPlace = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SCRIPT, command], {
      cwd: REPO_ROOT,
      env: scriptEnv(place),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    const collect = (d: Buffer) => {
      output += d.toString()
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.once('error', (err) => resolve({ code: null, output: `${output}${err}` }))
    child.once('close', (code) => resolve({ code, output }))
  })
}

/** Runs the script without blocking and fails with its output unless it exits 0. */
export async function kafkaScriptOrThrow(command: BrokerCommand, place: BrokerPlace = {}): Promise<void> {
  const r = await kafkaScript(command, place)
  if (r.code !== 0) throw new Error(`scripts/kafka.mjs ${command} → ${r.code}\n${r.output}`)
}
