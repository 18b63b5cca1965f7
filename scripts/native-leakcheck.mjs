#!/usr/bin/env node
// Leak check of the native transcoder (native/), separate from `npm test` because it is slow:
//
//   npm run native:leakcheck            both checks below
//   node scripts/native-leakcheck.mjs workload N   (internal: N transcode calls, then exit)
//   node scripts/native-leakcheck.mjs plateau N    (internal: check 2 alone, over N calls)
//
// 1. valgrind memcheck on a node process making a few thousand calls over every kind of input
//    (valid, deferred, rejected, malformed, whole-body fallbacks, projections, NDJSON), then
//    letting the transcoders be collected: no "definitely" or "indirectly lost" block may have an
//    allocation stack inside adgate_native.node. (node itself reports V8/libuv blocks; those are not
//    ours and are ignored.) Also no invalid read/write anywhere in the addon.
// 2. An RSS plateau over millions of calls in one process: RSS after the first fifth of the calls
//    (buffers warmed up) against the end; growth beyond 32 MiB fails. LEAKCHECK_CALLS sets the
//    number of calls (default 1,000,000).
//
// Needs `npm run build` first (it loads dist/decoders/transcode.js).

import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { answerUsage } from './lib/usage.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist', 'decoders', 'transcode.js')

async function workload(calls, report) {
  const { transcodeJsonNative, nativeStatus } = await import(join(root, 'dist/decoders/transcode.js'))
  const { encodeEvents } = await import(join(root, 'dist/generator/encode.js'))
  const { generateEvents } = await import(join(root, 'dist/generator/funnel.js'))
  if (!nativeStatus().native) throw new Error(`native transcoder not loaded: ${nativeStatus().reason}`)
  const imps = generateEvents('impression', 50, 1)
  const imp = JSON.stringify(imps[0])
  const bodies = [
    ['impression', false, encodeEvents('impression', imps, 'json')],
    ['impression', true, encodeEvents('impression', imps, 'ndjson')],
    ['bid', false, encodeEvents('bid', generateEvents('bid', 10, 2), 'json')], // ext written as posted
    [
      'bid',
      true,
      // ext the addon reads and then defers: blanks, a repeated key, deep, an escape
      Buffer.from(
        ['{ "a": 1 }', '{"k":1,"k":2}', `${'['.repeat(40)}${']'.repeat(40)}`, '{"s":"\\u00e9"}']
          .map(
            (ext) => `{"event_id":"e","event_time":1,"request":{"id":"a","imp":[{"id":"1","ext":${ext}}]}}`,
          )
          .join('\n'),
      ),
    ],
    ['click', true, encodeEvents('click', generateEvents('click', 20, 3), 'ndjson')],
    ['impression', false, Buffer.from(`[${imp},${imp.replace('"cost_micros":', '"cost_micros":-1,"x":')}]`)],
    ['impression', true, Buffer.from(`${imp}\n{"event_id":1}\n{broken\n${imp} x\n`)],
    ['impression', false, Buffer.from(`[${imp},${imp}`)], // truncated: whole-body fallback
    ['impression', false, Buffer.from(`[${'['.repeat(3000)}]`)],
    [
      'impression',
      false,
      Buffer.from(`${imp.slice(0, -1)},"deep":${'{"a":'.repeat(500)}1${'}'.repeat(500)}}`),
    ],
    ['impression', false, Buffer.from(imp.replace('"cost_micros":', '"cost_micros":1e400,"y":'))],
  ]
  const projection = ['country', 'cost_micros', 'device_type']
  const options = (type) => ({ type, maxEvents: 1000, ingestTime: 1_795_000_000_000, source: 'leak' })
  let events = 0
  const started = Date.now()
  for (let i = 0; i < calls; i++) {
    const [type, ndjson, body] = bodies[i % bodies.length]
    const r = transcodeJsonNative(
      body,
      ndjson,
      options(type),
      i % 3 === 0 && type === 'impression' ? projection : undefined,
    )
    if (r.ok) events += r.count
    if (report && i % Math.floor(calls / 20) === 0) report(i)
  }
  return { events, ms: Date.now() - started }
}

// valgrind cannot run AVX-512 code, which the normal build (-march=native) may contain: build the
// same sources for x86-64-v3 (AVX2), unoptimised enough for useful stacks.
function valgrindBuild() {
  const out = join(tmpdir(), 'adgate-leakcheck', 'adgate_native.node')
  mkdirSync(dirname(out), { recursive: true })
  const require = createRequire(join(root, 'native', 'package.json'))
  const simdjson = join(dirname(require.resolve('@nozbe/simdjson/package.json')), 'src')
  const napi = require('node-addon-api').include_dir
  const cc = spawnSync(
    'g++',
    [
      '-shared',
      '-fPIC',
      '-O1',
      '-g',
      '-march=x86-64-v3',
      '-std=c++17',
      '-fno-exceptions',
      '-DNAPI_VERSION=8',
      '-DNAPI_DISABLE_CPP_EXCEPTIONS',
      '-DSIMDJSON_EXCEPTIONS=0',
      `-I${napi}`,
      `-I${simdjson}`,
      `-I${join(process.execPath, '..', '..', 'include', 'node')}`,
      join(root, 'native', 'src', 'addon.cc'),
      join(root, 'native', 'src', 'simdjson.cc'),
      '-o',
      out,
    ],
    { stdio: 'inherit' },
  )
  if (cc.status !== 0) throw new Error('g++ failed building the valgrind variant of the addon')
  return out
}

function valgrind() {
  const addon = valgrindBuild()
  const run = spawnSync(
    'valgrind',
    [
      '--leak-check=full',
      '--show-leak-kinds=definite,indirect',
      '--errors-for-leak-kinds=none',
      '--num-callers=40',
      process.execPath,
      '--expose-gc',
      fileURLToPath(import.meta.url),
      'workload',
      '3000',
    ],
    { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, LEAKCHECK_ADDON: addon } },
  )
  if (run.error) throw run.error
  const log = run.stderr
  // Loss records are blank-line separated blocks starting "N bytes in M blocks are definitely lost".
  const records = log.split(/\n==\d+== \n/)
  const ours = (block) =>
    ['adgate_native.node', 'Transcoder', 'addon.cc', 'simdjson'].some((s) => block.includes(s))
  const lost = records.filter((b) => /are (definitely|indirectly) lost/.test(b) && ours(b))
  const invalid = records.filter(
    (b) => /Invalid (read|write)|uninitialised|Conditional jump/.test(b) && ours(b),
  )
  const ran = /workload: (\d+) calls, (\d+) events/.exec(run.stdout)
  process.stdout.write(`valgrind: ${ran ? ran[0] : 'the workload did not finish'} under memcheck\n`)
  const summary = (log.match(/LEAK SUMMARY:[\s\S]*?suppressed:[^\n]*/) ?? ['(no leak summary)'])[0]
  process.stdout.write(
    `valgrind: exit ${run.status}; whole process ${summary.replace(/==\d+==/g, '').replace(/\s+/g, ' ')}\n`,
  )
  process.stdout.write(
    `valgrind: loss records in the addon: ${lost.length}; invalid accesses in the addon: ${invalid.length}\n`,
  )
  for (const b of [...lost, ...invalid].slice(0, 5)) process.stdout.write(`${b}\n`)
  return ran !== null && lost.length === 0 && invalid.length === 0 && run.status === 0
}

async function plateau(calls) {
  const mib = () => process.memoryUsage().rss / 1048576
  let warm = 0
  const { events, ms } = await workload(calls, (i) => {
    if (i >= calls / 5 && warm === 0) {
      globalThis.gc?.()
      warm = mib()
    }
  })
  globalThis.gc?.()
  const end = mib()
  const growth = end - warm
  process.stdout.write(
    `rss plateau: ${calls.toLocaleString()} calls (${events.toLocaleString()} events) in ${(ms / 1000).toFixed(1)} s; ` +
      `rss after warm-up ${warm.toFixed(1)} MiB, at the end ${end.toFixed(1)} MiB (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB)\n`,
  )
  return growth <= 32
}

answerUsage([undefined, 'workload', 'plateau'])
const [mode, arg] = process.argv.slice(2)
if (mode === 'workload') {
  const { events } = await workload(Number(arg))
  process.stdout.write(`workload: ${arg} calls, ${events} events\n`)
  // Drop the transcoders so their native memory is freed before valgrind's leak scan.
  globalThis.gc?.()
  await new Promise((r) => setTimeout(r, 50))
  globalThis.gc?.()
} else if (mode === 'plateau') {
  process.exit((await plateau(Number(arg))) ? 0 : 1)
} else {
  if (!existsSync(dist)) {
    process.stderr.write('run `npm run build` first\n')
    process.exit(2)
  }
  const calls = Number(process.env.LEAKCHECK_CALLS ?? 1_000_000)
  const p = spawnSync(
    process.execPath,
    ['--expose-gc', fileURLToPath(import.meta.url), 'plateau', String(calls)],
    {
      stdio: 'inherit',
    },
  )
  const plateauOk = p.status === 0
  const valgrindOk = spawnSync('valgrind', ['--version']).status === 0 ? valgrind() : null
  if (valgrindOk === null) process.stdout.write('valgrind: not installed, skipped\n')
  const ok = plateauOk && valgrindOk !== false
  process.stdout.write(`native leak check: ${ok ? 'PASS' : 'FAIL'}\n`)
  process.exit(ok ? 0 : 1)
}
