// The `start` command of scripts/kafka.mjs, kafka-cluster.mjs and registry.mjs. Two starts can race
// (two test runs, or a test run and `npm run kafka:start`): only the holder of the start lock launches
// JVMs, the others wait for it. A lock left by a dead process is taken over.
// Only node: built-ins are used so the scripts run before `npm ci`.

import fs from 'node:fs'
import path from 'node:path'
import { fail, waitUntil } from './kafka-node.mjs'

/**
 * Nothing to do when `ready()` already holds (false is returned); otherwise `launch(started)` runs
 * under `lockFile` and must leave the service ready, or another start in progress is waited for.
 * `where` names the service in the messages (`<label>: ready on <where> in 4.2 s`).
 */
export async function startOnce({ label, where, lockFile, ready, launch }) {
  if (await ready()) {
    console.log(`${label}: already running on ${where}`)
    return false
  }
  const started = Date.now()
  if (tryStartLock(lockFile)) {
    try {
      await launch(started)
    } finally {
      fs.rmSync(lockFile, { force: true })
    }
  } else {
    console.log(`${label}: another start is in progress, waiting for ${where}`)
    // The holder drops the lock once it is done (or has failed), so ask once more after it is gone.
    const up = (await waitUntil(ready, () => lockHolderAlive(lockFile), started)) || (await ready())
    if (!up) fail(`the other start did not bring ${where} up`)
  }
  console.log(`${label}: ready on ${where} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return true
}

function tryStartLock(lockFile) {
  fs.mkdirSync(path.dirname(lockFile), { recursive: true })
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' })
      return true
    } catch (err) {
      if (err.code !== 'EEXIST') throw err
    }
    if (lockHolderAlive(lockFile)) return false
    fs.rmSync(lockFile, { force: true })
  }
  return false
}

function lockHolderAlive(lockFile) {
  try {
    process.kill(Number(fs.readFileSync(lockFile, 'utf8')), 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}
