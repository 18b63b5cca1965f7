import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { areaOf } from './cpu-profile.js'

/**
 * Linux `perf record` of one process (every thread) while a bench drives it: CPU samples
 * (cpu-clock counts only while a thread is on a core) with call stacks, named by the JIT map that
 * node writes with --perf-basic-prof-only-functions. V8's --cpu-prof samples wall time instead: on
 * a crowded box it charges a thread's wait for a core to whatever it was in (a socket write showed
 * 0.3–1.5 ms per request there against 70 µs of thread CPU measured around it).
 */
export const PERF_NODE_FLAGS = ['--perf-basic-prof-only-functions']
const HZ = 1999

export function perfAvailable(): boolean {
  return spawnSync('perf', ['--version'], { stdio: 'ignore' }).status === 0
}

export function startPerf(pid: number, file: string): ChildProcess {
  const args = ['record', '-q', '-e', 'cpu-clock', '-F', String(HZ), '-g', '-p', String(pid), '-o', file]
  return spawn('perf', args, { stdio: 'ignore' })
}

export function stopPerf(perf: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    perf.once('exit', () => resolve())
    perf.kill('SIGINT') // perf writes its file on SIGINT
  })
}

/**
 * The stages of a request, for CPU per request by stage across every thread: a sample goes to the
 * first stage any frame of its stack matches (GC and the JIT first, as they run under any code),
 * else to the event loop's own work (uWS, libuv, sockets, the kernel).
 */
const STAGES: readonly (readonly [string, RegExp])[] = [
  [
    'GC',
    /Scaveng|MarkCompact|ConcurrentMarking|IncrementalMarking|Sweeper|ArrayBufferSweeper|Heap::CollectGarbage/,
  ],
  ["V8's JIT compiler", /compiler::|Compiler::|CompileLazy/],
  ['LZ4', /LZ4_/],
  ['JSON → Avro (the native transcoder, simdjson)', /Transcoder|simdjson/],
  [
    'decode task: record batches, rules and their views, CRC, task set-up',
    /decode-task\.js|record-batch\.js|transcode\.js|decode\.js/,
  ],
  [
    'Kafka produce (kafka/batch-sink, @platformatic/kafka, its socket)',
    /batch-sink\.js|cluster\.js|platformatic\/kafka|produce-request/,
  ],
  ['strict-HTTP guard (its JS, streams and sockets)', /http-guard\.js|request-head\.js|chunked-body/],
  ['POST route, answer, metrics (gateway/, prom-client)', /gateway\/\w[\w-]*\.js|prom-client/],
  ['hand-off to the decode workers (piscina, MessagePort)', /piscina|MessagePort|internal\/worker/],
]
const LOOP_STAGE = 'event loop, uWS, sockets, kernel (no adgate or library frame)'

/** CPU seconds per stage of a request (STAGES), every thread together, largest first. */
export function perfStages(file: string): { stage: string; seconds: number }[] {
  const script = spawnSync('perf', ['script', '-i', file], { encoding: 'utf8', maxBuffer: 1 << 30 })
  const seconds = new Map<string, number>()
  let stack: string[] = []
  const flush = () => {
    if (stack.length === 0) return
    const text = stack.join('\n')
    const stage = STAGES.find(([, re]) => re.test(text))?.[0] ?? LOOP_STAGE
    seconds.set(stage, (seconds.get(stage) ?? 0) + 1 / HZ)
    stack = []
  }
  for (const line of script.stdout.split('\n')) {
    if (line.trim() === '' || /^\S/.test(line)) flush()
    else stack.push(line)
  }
  flush()
  return [...seconds].map(([stage, s]) => ({ stage, seconds: s })).sort((a, b) => b.seconds - a.seconds)
}

export interface PerfArea {
  readonly thread: string
  readonly area: string
  /** CPU seconds sampled there. */
  readonly seconds: number
}

// A frame of node's perf map: "JS:*name url:line:column" (* optimized, ^ baseline, ~ interpreted).
const JS_FRAME = /^JS:[*^~+]?(\S*) (\S+?)(?::\d+:\d+)?$/

/**
 * CPU per thread and area: each sample goes to the deepest JavaScript frame of its stack (an
 * adgate folder, a package, a Node internal), with the native and kernel work beneath it; samples
 * without one are the event loop's own (uWS, libuv, the kernel) or V8's background threads.
 */
export function perfAreas(file: string, mainPid: number): PerfArea[] {
  const script = spawnSync('perf', ['script', '-i', file], { encoding: 'utf8', maxBuffer: 1 << 30 })
  const byThread = new Map<string, Map<string, number>>()
  const threadOf = new Map<string, Thread>()
  const add = (tid: string, area: string) => {
    let areas = byThread.get(tid)
    if (!areas) {
      areas = new Map()
      byThread.set(tid, areas)
    }
    areas.set(area, (areas.get(area) ?? 0) + 1 / HZ)
  }
  // perf script: a header line "comm tid [cpu] time: period event:", then one frame per line, leaf first.
  let tid = ''
  let frames: string[] = []
  const flush = () => {
    if (tid === '' || frames.length === 0) return
    let area: string | null = null
    for (const f of frames) {
      const js = JS_FRAME.exec(f)
      if (js) {
        // No script URL: code compiled with new Function (schema normalizers, data-quality rules).
        area = js[2]!.startsWith(':') ? 'generated code (normalizers, rules)' : areaOf(js[2]!, js[1]!)
        break
      }
    }
    if (area === null)
      area = frames.some((f) => f.includes('compiler::'))
        ? 'V8 JIT compiler'
        : frames.some((f) => /Heap|Scaveng|Marking|Sweep/.test(f))
          ? 'GC'
          : 'native: event loop, sockets, kernel'
    const name = threadName(tid, mainPid, area)
    if (RANK[name] > RANK[threadOf.get(tid) ?? 'other thread'] || !threadOf.has(tid)) threadOf.set(tid, name)
    add(tid, area)
    frames = []
  }
  for (const line of script.stdout.split('\n')) {
    if (line.trim() === '') {
      flush()
    } else if (/^\S/.test(line)) {
      flush()
      tid = line.split(/\s+/)[1] ?? ''
    } else {
      // "\t ffffffff symbol+0x12 (dso)"
      const sym = line
        .trim()
        .replace(/^[0-9a-f]+ /, '')
        .replace(/ \([^)]*\)$/, '')
        .replace(/\+0x[0-9a-f]+$/, '')
      frames.push(sym)
    }
  }
  flush()
  const out: PerfArea[] = []
  for (const [t, areas] of byThread)
    for (const [area, seconds] of areas) out.push({ thread: threadOf.get(t)!, area, seconds })
  // Threads of one kind (two decode workers, V8's helpers) are summed.
  const merged = new Map<string, PerfArea>()
  for (const a of out) {
    const k = `${a.thread}\u0000${a.area}`
    const m = merged.get(k)
    merged.set(k, { ...a, seconds: (m?.seconds ?? 0) + a.seconds })
  }
  return [...merged.values()].sort((a, b) => b.seconds - a.seconds)
}

type Thread = 'main thread' | 'decode worker' | 'spool thread' | 'V8 background threads' | 'other thread'

// A thread is named by its most telling sample: a worker also collects its own garbage.
const RANK: Record<Thread, number> = {
  'other thread': 0,
  'V8 background threads': 1,
  'decode worker': 2,
  'spool thread': 2,
  'main thread': 3,
}

function threadName(tid: string, mainPid: number, area: string): Thread {
  if (Number(tid) === mainPid) return 'main thread'
  if (
    area.startsWith('adgate workers/') ||
    area.startsWith('adgate decoders/') ||
    area.startsWith('adgate kafka/protocol')
  )
    return 'decode worker'
  if (area.startsWith('adgate spool/') || area === 'package better-sqlite3') return 'spool thread'
  if (area === 'V8 JIT compiler' || area === 'GC') return 'V8 background threads'
  return 'other thread'
}
