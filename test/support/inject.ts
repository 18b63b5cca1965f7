// In the spirit of fastify's inject(): the gateway's routes (gateway/app.ts) on a fake uWS app, driven
// by plain request objects — no socket, no port, the TypeScript source. The fake keeps the uWS rules
// the routes depend on: headers are read during the handler only, body chunks arrive after it returns
// in ArrayBuffers that are wiped once their callback returns, and a reply is written once.
import type { HttpRequest, HttpResponse, TemplatedApp, WebSocketBehavior } from 'uWebSockets.js'

type Handler = (res: HttpResponse, req: HttpRequest) => void | Promise<void>

interface Route {
  readonly method: string // lower case, or 'any'
  readonly pattern: string
  readonly handler: Handler
}

export interface InjectRequest {
  readonly method?: string
  /** Path and query, e.g. '/v1/clicks?x=1'. */
  readonly url: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Buffer
  /** Body chunk size (the body arrives in several onData calls). Default: one chunk. */
  readonly chunk?: number
  /** Leave Content-Length out (a body of unknown length). */
  readonly noContentLength?: boolean
}

export interface InjectReply {
  readonly status: number
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  readonly bytes: Buffer
  /** The gateway asked to close the connection after this reply. */
  readonly closed: boolean
  /** The user data of a WebSocket upgrade, when the request was upgraded. */
  readonly upgraded?: unknown
}

/** A uWS app that records routes; `inject` answers requests with them. */
export class FakeApp {
  readonly routes: Route[] = []
  readonly sockets = new Map<string, WebSocketBehavior<unknown>>()

  /** This object as the uWS type the routes are registered on. */
  get app(): TemplatedApp {
    return this as unknown as TemplatedApp
  }

  get(pattern: string, handler: Handler): this {
    return this.add('get', pattern, handler)
  }
  post(pattern: string, handler: Handler): this {
    return this.add('post', pattern, handler)
  }
  head(pattern: string, handler: Handler): this {
    return this.add('head', pattern, handler)
  }
  any(pattern: string, handler: Handler): this {
    return this.add('any', pattern, handler)
  }
  ws(pattern: string, behavior: WebSocketBehavior<unknown>): this {
    this.sockets.set(pattern, behavior)
    return this
  }

  private add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, pattern, handler })
    return this
  }

  /** uWS's choice: a static pattern before a wildcard, a method's handler before `any`. */
  route(method: string, path: string): Route | undefined {
    const matches = (p: string) => p === path || (p.endsWith('/*') && path.startsWith(p.slice(0, -1)))
    const rank = (r: Route) => (r.pattern.endsWith('*') ? 2 : 0) + (r.method === 'any' ? 1 : 0)
    return this.routes
      .filter((r) => (r.method === method || r.method === 'any') && matches(r.pattern))
      .sort((a, b) => rank(a) - rank(b))[0]
  }
}

/** One request through the fake app, answered as uWS would answer it. */
export function inject(app: FakeApp, request: InjectRequest): Promise<InjectReply> {
  const method = (request.method ?? 'GET').toLowerCase()
  const [path = '', query] = request.url.split('?', 2) as [string, string | undefined]
  const body = typeof request.body === 'string' ? Buffer.from(request.body) : request.body
  const headers = new Map(Object.entries(request.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
  if (body !== undefined && !request.noContentLength && !headers.has('content-length'))
    headers.set('content-length', String(body.length))

  return new Promise((resolve) => {
    const res = new FakeResponse(resolve)
    const socket = sockets(app, method, path, headers)
    let live = true
    const req = {
      getHeader: (name: string) => (live ? (headers.get(name) ?? '') : dead()),
      forEach: (cb: (name: string, value: string) => void) => {
        for (const [k, v] of headers) cb(k, v)
      },
      getMethod: () => method,
      getCaseSensitiveMethod: () => request.method ?? 'GET',
      getUrl: () => path,
      getQuery: () => query,
    } as unknown as HttpRequest
    if (socket !== undefined) socket.upgrade?.(res as unknown as HttpResponse, req, {} as never)
    else {
      const route = app.route(method, path)
      if (route === undefined) throw new Error(`no route for ${method} ${path}, not even /*`)
      void route.handler(res as unknown as HttpResponse, req)
    }
    live = false
    setImmediate(() => res.feed(body ?? Buffer.alloc(0), request.chunk))
  })
}

function sockets(app: FakeApp, method: string, path: string, headers: Map<string, string>) {
  // uWS passes a GET without Sec-WebSocket-Key to the HTTP routes.
  if (method !== 'get' || !headers.has('sec-websocket-key')) return undefined
  return app.sockets.get(path)
}

function dead(): never {
  throw new Error('uWS: the request was read after its handler returned')
}

class FakeResponse {
  private status = ''
  private readonly headers: Record<string, string> = {}
  private aborted: (() => void) | null = null
  private data: ((chunk: ArrayBuffer, isLast: boolean) => void) | null = null
  private done = false

  constructor(private readonly resolve: (reply: InjectReply) => void) {}

  writeStatus(status: string): this {
    this.status = status
    return this
  }
  writeHeader(name: string, value: string): this {
    this.headers[name.toLowerCase()] = value
    return this
  }
  end(body: string | Uint8Array = '', close = false): this {
    return this.finish(Buffer.from(body), close)
  }
  endWithoutBody(_length?: number, close = false): this {
    return this.finish(Buffer.alloc(0), close)
  }
  cork(cb: () => void): this {
    cb()
    return this
  }
  onAborted(cb: () => void): this {
    this.aborted = cb
    return this
  }
  onData(cb: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.data = cb
    return this
  }
  getRemoteAddressAsText(): ArrayBuffer {
    return new TextEncoder().encode('127.0.0.1').buffer as ArrayBuffer
  }
  close(): this {
    this.aborted?.()
    return this.finish(Buffer.alloc(0), true)
  }
  upgrade(userData: unknown): void {
    if (this.done) throw new Error('uWS: upgrade after the response was written')
    this.done = true
    this.resolve({
      status: 101,
      headers: this.headers,
      body: '',
      bytes: Buffer.alloc(0),
      closed: false,
      upgraded: userData,
    })
  }

  /** The body, as uWS hands it out: chunks in ArrayBuffers that are wiped after their callback. */
  feed(body: Buffer, size = body.length || 1): void {
    if (this.data === null || this.done) return
    let at = 0
    do {
      const part = body.subarray(at, at + size)
      at += part.length
      const chunk = new ArrayBuffer(part.length)
      new Uint8Array(chunk).set(part)
      this.data(chunk, at >= body.length)
      new Uint8Array(chunk).fill(0)
    } while (at < body.length && !this.done)
  }

  private finish(bytes: Buffer, closed: boolean): this {
    if (this.done) throw new Error('uWS: a response was written twice')
    this.done = true
    this.resolve({
      status: Number.parseInt(this.status || '200', 10),
      headers: this.headers,
      body: bytes.toString('utf8'),
      bytes,
      closed,
    })
    return this
  }
}
