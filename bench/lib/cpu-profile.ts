import { readFileSync } from 'node:fs'

/**
 * Reads V8 .cpuprofile files (node --cpu-prof, one per thread) and says where the CPU went inside a
 * time window: self time per function, and per area (an adgate source folder, a package, Node
 * internals, GC). Samples carry V8's monotonic timestamps in µs, the clock process.hrtime reads, so
 * the window can be taken by the process driving the load.
 */
interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface SelfTime {
  /** Function and where it is (area: file:line). */
  name: string
  area: string
  us: number
}

/** Which part of the system a script URL belongs to. */
export function areaOf(url: string, functionName: string): string {
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(program)' || functionName === '(root)') return 'native / VM (uWS, N-API addons, V8)'
  if (functionName === '(idle)') return 'idle'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return `package ${pkg[1]}`
  const ours = /\/dist\/(.+)\.js$/.exec(url)
  if (ours) return `adgate ${ours[1]}`
  if (url.startsWith('node:'))
    return `node ${
      url
        .slice(5)
        .replace(/^internal\//, '')
        .split('/')[0]
    }`
  return url === '' ? 'native / VM (uWS, N-API addons, V8)' : url
}

/** Self time per function within [fromUs, toUs] (monotonic µs), idle excluded. */
export function selfTimes(file: string, fromUs: number, toUs: number): SelfTime[] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const total = new Map<number, number>()
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i]!
    t += dt
    if (t < fromUs || t > toUs) continue
    // A sample's delta is the time since the previous one: charge it to this sample's function.
    total.set(p.samples[i]!, (total.get(p.samples[i]!) ?? 0) + dt)
  }
  const merged = new Map<string, SelfTime>()
  for (const [id, us] of total) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    const area = areaOf(url, functionName)
    if (area === 'idle') continue
    const name = `${functionName || '(anonymous)'} ${url.split('/').slice(-1)[0]}:${lineNumber + 1}`
    const m = merged.get(name) ?? { name, area, us: 0 }
    m.us += us
    merged.set(name, m)
  }
  return [...merged.values()].sort((a, b) => b.us - a.us)
}

/** Sum self times per area, largest first. */
export function byArea(times: SelfTime[]): { area: string; us: number }[] {
  const m = new Map<string, number>()
  for (const s of times) m.set(s.area, (m.get(s.area) ?? 0) + s.us)
  return [...m.entries()].map(([area, us]) => ({ area, us })).sort((a, b) => b.us - a.us)
}
