import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'
import type { Logger } from '../config/logger.js'
import type { Granularity, StatsQuery, Storage } from './storage.js'

/**
 * The correlator's small HTTP API, answered from storage:
 *   GET /v1/campaigns/:id/stats?from=&to=&granularity=minute|hour   one campaign
 *   GET /v1/stats?campaign=&from=&to=&granularity=                  all campaigns (adgate query)
 *   GET /metrics, GET /healthz
 * from/to are epoch ms or ISO-8601; `to` is exclusive. Default granularity: hour.
 */
export function startCorrelatorHttp(
  storage: Storage,
  registry: Registry,
  host: string,
  port: number,
  logger?: Logger,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type })
      res.end(typeof body === 'string' ? body : JSON.stringify(body))
    }
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (req.method !== 'GET') return send(405, error('METHOD_NOT_ALLOWED', 'only GET'))
    if (url.pathname === '/healthz') return send(200, { status: 'ok' })
    if (url.pathname === '/metrics') {
      void registry.metrics().then((text) => send(200, text, registry.contentType))
      return
    }
    const one = /^\/v1\/campaigns\/([^/]+)\/stats$/.exec(url.pathname)
    if (!one && url.pathname !== '/v1/stats') return send(404, error('NOT_FOUND', 'no such route'))
    let query: StatsQuery
    try {
      query = parseStatsQuery(url.searchParams, one ? decodeURIComponent(one[1]!) : undefined)
    } catch (err) {
      return send(400, error('BAD_QUERY', (err as Error).message))
    }
    storage.stats(query).then(
      (rows) => send(200, one ? { campaign_id: query.campaign, granularity: query.granularity, rows } : rows),
      (err: Error) => {
        logger?.error({ err }, 'stats query failed')
        send(500, error('STORAGE_ERROR', err.message))
      },
    )
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      const addr = server.address()
      resolve({ server, port: typeof addr === 'object' && addr ? addr.port : port })
    })
  })
}

function error(code: string, message: string) {
  return { error: { code, message } }
}

/** from/to/granularity/campaign from a query string; throws with a message users can act on. */
export function parseStatsQuery(params: URLSearchParams, campaign?: string): StatsQuery {
  const g = params.get('granularity') ?? 'hour'
  if (g !== 'minute' && g !== 'hour') throw new Error('granularity must be minute or hour')
  const q: StatsQuery = { granularity: g as Granularity }
  const c = campaign ?? params.get('campaign') ?? undefined
  if (c !== undefined) q.campaign = c
  const from = params.get('from')
  const to = params.get('to')
  if (from !== null) q.from = parseTime(from, 'from')
  if (to !== null) q.to = parseTime(to, 'to')
  return q
}

export function parseTime(raw: string, name: string): number {
  const t = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw)
  if (!Number.isFinite(t))
    throw new Error(`${name} must be epoch milliseconds or an ISO-8601 time, got ${raw}`)
  return t
}
