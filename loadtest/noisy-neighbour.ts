import { spawn } from 'node:child_process'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { REPO_ROOT } from '../bench/lib/results.js'
import { bodies } from '../bench/lib/servers.js'
import { median } from '../bench/lib/stats.js'
import { CONTENT_TYPE } from '../generator/encode.js'

/**
 * Issue 15's noisy neighbour: one client posts valid batches as fast as it can while another
 * posts, one after another, the most expensive bodies it can build for each decoder
 * (noisy-client.ts, a process of its own). The valid client's throughput with the neighbour is
 * compared with its throughput alone (same gateway, measured just before), and every answer it
 * got must be a 2xx. The two are two clients as the gateway tells clients apart: two API keys
 * (NOISY_NEIGHBOUR_KEYS; on one address without keys, they would be one client).
 */
export interface NoisyResult {
  /** Medians over the rounds. */
  readonly alone_events_per_s: number
  readonly with_neighbour_events_per_s: number
  /** The median of the rounds' ratios (each round: alone, then with the neighbour). */
  readonly ratio: number
  readonly rounds: readonly { alone_events_per_s: number; with_neighbour_events_per_s: number }[]
  /** Answers to the valid client that were not 2xx, by status (must stay empty). */
  readonly valid_non2xx: Record<string, number>
  /** What the neighbour's bodies got, by body kind and status. */
  readonly neighbour: Record<string, Record<string, number>>
  /** The last round's valid client with the neighbour. */
  readonly result: autocannon.Result
}

const EVENTS_PER_REQUEST = 100
const VALID_KEY = 'valid-client-secret'
const NOISY_KEY = 'noisy-client-secret'
/** ADGATE_API_KEYS of the gateway under test. */
export const NOISY_NEIGHBOUR_KEYS = `valid:${VALID_KEY}:*,noisy:${NOISY_KEY}:*`
const CLIENT = join(REPO_ROOT, 'dist', 'loadtest', 'noisy-client.js')

async function valid(url: string, seconds: number): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/v1/impressions`,
    method: 'POST',
    connections: 16,
    duration: seconds,
    headers: { 'content-type': CONTENT_TYPE.json, 'x-api-key': VALID_KEY },
    requests: bodies('impression', 'json', 20, EVENTS_PER_REQUEST).map((body) => ({ method: 'POST', body })),
  })
}

interface Neighbour {
  /** Starts posting for the seconds it was given; resolves to what its bodies got. */
  go(): Promise<Record<string, Record<string, number>>>
}

/** The neighbour (the compiled noisy-client.js), started and ready: its bodies are built. */
function neighbour(url: string, seconds: number, first: number): Promise<Neighbour> {
  const child = spawn(process.execPath, [CLIENT, url, String(seconds), NOISY_KEY, String(first)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let out = ''
  const exited = new Promise<Record<string, Record<string, number>>>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code === 0)
        resolve(JSON.parse(out.slice(out.indexOf('\n') + 1)) as Record<string, Record<string, number>>)
      else reject(new Error(`${CLIENT} exited ${code}`))
    })
  })
  return new Promise((resolve, reject) => {
    exited.catch(reject)
    child.stdout.on('data', (d: Buffer) => {
      const wasReady = out.includes('\n')
      out += d.toString()
      if (!wasReady && out.startsWith('ready\n'))
        resolve({
          go: () => {
            child.stdin.end('go\n')
            return exited
          },
        })
    })
  })
}

/**
 * `rounds` rounds, each the valid client alone for `seconds` and beside the neighbour for as long
 * (in turn which first); the ratio is the median of the rounds' (the machine's other load moves
 * both sides).
 */
export async function noisyNeighbour(url: string, seconds: number, rounds = 1): Promise<NoisyResult> {
  const perSecond = (r: autocannon.Result) => Math.round((r['2xx'] / seconds) * EVENTS_PER_REQUEST)
  const figures: { alone_events_per_s: number; with_neighbour_events_per_s: number }[] = []
  const neighbourCounts: Record<string, Record<string, number>> = {}
  const valid_non2xx: Record<string, number> = {}
  let last: autocannon.Result | undefined
  for (let round = 0; round < rounds; round++) {
    const sent = Object.values(neighbourCounts).reduce(
      (n, c) => n + Object.values(c).reduce((a, b) => a + b, 0),
      0,
    )
    const ready = await neighbour(url, seconds, sent)
    // Odd rounds measure beside the neighbour first, so a drift in the machine's load cancels out.
    const before = round % 2 === 1 ? null : await valid(url, seconds)
    const noisy = ready.go()
    const withNeighbour = await valid(url, seconds)
    const counts = await noisy
    const alone = before ?? (await valid(url, seconds))
    for (const [kind, statuses] of Object.entries(counts)) {
      const counts = neighbourCounts[kind] ?? {}
      neighbourCounts[kind] = counts
      for (const [status, n] of Object.entries(statuses)) add(counts, status, n)
    }
    for (const [code, n] of Object.entries(withNeighbour.statusCodeStats ?? {}))
      if (!code.startsWith('2') && (n.count ?? 0) > 0) add(valid_non2xx, code, n.count ?? 0)
    if (withNeighbour.errors > 0) add(valid_non2xx, 'errors', withNeighbour.errors)
    figures.push({
      alone_events_per_s: perSecond(alone),
      with_neighbour_events_per_s: perSecond(withNeighbour),
    })
    last = withNeighbour
  }
  return {
    alone_events_per_s: median(figures.map((f) => f.alone_events_per_s)),
    with_neighbour_events_per_s: median(figures.map((f) => f.with_neighbour_events_per_s)),
    ratio: median(figures.map((f) => f.with_neighbour_events_per_s / f.alone_events_per_s)),
    rounds: figures,
    valid_non2xx,
    neighbour: neighbourCounts,
    result: last!,
  }
}

function add(counts: Record<string, number>, key: string, n: number): void {
  counts[key] = (counts[key] ?? 0) + n
}
