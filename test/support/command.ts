import { spawn } from 'node:child_process'

/**
 * Runs a command to its end, asynchronously (the load keeps running meanwhile); resolves with its
 * output (stdout and stderr together), rejects with it when the command exits non-zero.
 */
export function runCommand(command: string, args: readonly string[], name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.once('error', reject)
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${name} exited ${code}:\n${out}`)),
    )
  })
}
