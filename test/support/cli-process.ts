// A command of the compiled adgate CLI as a child process, for integration tests: its output
// collected, and the ports its servers announce in their "<service> listening" log lines.
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))
/** A gateway took over 30 s to start at load 19 (1 of 12 shutdown.test runs, session 4). */
const START_TIMEOUT_MS = 90_000

export interface CliProcess {
  readonly child: ChildProcess
  /** Everything it wrote so far, stdout and stderr. */
  readonly output: () => string
  /** Its exit code, or the signal that ended it (named, so a failed check says which). */
  readonly exited: Promise<number | NodeJS.Signals>
  /** The port `service` listens on, once logged; rejects when the process exits first or after 90 s (and kills it). */
  listening(service: 'gateway' | 'correlator'): Promise<number>
}

/** `adgate <command>` with only PATH and `env` in its environment. */
export function spawnCli(command: string, env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [cli, command], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const append = (d: Buffer) => {
    output += d.toString()
  }
  child.stdout!.on('data', append)
  child.stderr!.on('data', append)
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once('exit', (code, signal) => {
      // A signal nobody sent on purpose is a crash: its last words go to the test's output.
      if (signal !== null && signal !== 'SIGKILL')
        console.error(`adgate ${command} ended by ${signal}; its last output:\n${output.slice(-4000)}`)
      resolve(code ?? signal!)
    }),
  )
  const listening = (service: string) =>
    new Promise<number>((resolve, reject) => {
      const line = new RegExp(`"port":(\\d+)[^\\n]*"msg":"${service} listening"`)
      const done = () => {
        clearTimeout(timer)
        child.stdout!.off('data', look)
        child.off('exit', gone)
      }
      const look = () => {
        const m = line.exec(output)
        if (m) {
          done()
          resolve(Number(m[1]))
        }
      }
      const gone = () => {
        done()
        reject(new Error(`adgate ${command} exited during start-up:\n${output}`))
      }
      const timer = setTimeout(() => {
        done()
        // Never left behind: a gateway that started after this gave up ran on for 46 min (session 4).
        child.kill('SIGKILL')
        reject(new Error(`${service} did not start within ${START_TIMEOUT_MS} ms:\n${output}`))
      }, START_TIMEOUT_MS)
      child.stdout!.on('data', look)
      child.once('exit', gone)
      look()
    })
  return { child, output: () => output, exited, listening }
}
