// The real schema registry (Apicurio, scripts/registry.mjs) for the tests that need one: started
// on first use by those tests rather than by the global setup, so other test runs do not pay for
// a ~30-60 s JVM start. .ci/run fetches it beforehand and stops it on exit.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { warnLoudly } from './services.js'

const script = fileURLToPath(new URL('../../scripts/registry.mjs', import.meta.url))
const port = Number(process.env.REGISTRY_PORT ?? 8085)

/** The registry's Confluent-compatible base URL, or null when it cannot run here (tests skip; in CI an error). */
export async function ensureRegistry(): Promise<string | null> {
  const ok = await new Promise<boolean>((resolve) => {
    const child = spawn(process.execPath, [script, 'start'], {
      stdio: 'inherit',
      env: { ...process.env, REGISTRY_PORT: String(port) },
    })
    child.on('error', () => resolve(false))
    child.on('close', (code) => resolve(code === 0))
  })
  if (ok) return `http://127.0.0.1:${port}/apis/ccompat/v7`
  const reason = 'scripts/registry.mjs start failed (see above): the schema registry tests'
  if (process.env.CI === 'true') throw new Error(`${reason} must run in CI`)
  warnLoudly(`${reason} will be SKIPPED`)
  return null
}
