import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'

export interface RegistryClientOptions {
  /** Base URL of the Confluent-compatible API, e.g. http://registry:8081 or …/apis/ccompat/v7 */
  readonly url: URL
  readonly user?: string
  readonly password?: string
  /** PEM CA bundle to trust for https (unset: the system CAs). */
  readonly caFile?: string
  readonly timeoutMs?: number
}

/** A registry answer other than success: the HTTP status and Confluent's error_code (40401 …). */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly errorCode: number | undefined,
  ) {
    super(message)
  }
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json'

/**
 * The few calls of the Confluent Schema Registry API adgate makes: at start-up (register,
 * compatibility) and when a reader meets an id it does not know (schema by id). A client of our
 * own on node:http(s) rather than @confluentinc/schemaregistry: these five requests are all we
 * need, none is on a hot path, and it keeps axios and its siblings out of the gateway.
 */
export class SchemaRegistryClient {
  private readonly base: string
  private readonly headers: Record<string, string>
  private readonly agent: http.Agent
  private readonly timeoutMs: number

  constructor(private readonly options: RegistryClientOptions) {
    this.base = options.url.href.replace(/\/+$/, '')
    this.headers = { Accept: CONTENT_TYPE, 'Content-Type': CONTENT_TYPE }
    if (options.user !== undefined) {
      const token = Buffer.from(`${options.user}:${options.password ?? ''}`).toString('base64')
      this.headers.Authorization = `Basic ${token}`
    }
    this.agent =
      options.url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, ca: options.caFile ? readFileSync(options.caFile) : undefined })
        : new http.Agent({ keepAlive: true })
    this.timeoutMs = options.timeoutMs ?? 10_000
  }

  /** The id of `schema` under `subject`, registering it as a new version if it is not there yet. */
  async register(subject: string, schema: string): Promise<number> {
    const body = await this.call('POST', `/subjects/${enc(subject)}/versions`, { schema })
    return (body as { id: number }).id
  }

  /**
   * The id of `schema` if it is already a version of `subject`; else whether the subject exists
   * (Confluent's 40401 "subject not found" against 40403 "schema not found").
   */
  async lookup(subject: string, schema: string): Promise<number | 'no-subject' | 'no-schema'> {
    try {
      return ((await this.call('POST', `/subjects/${enc(subject)}`, { schema })) as { id: number }).id
    } catch (err) {
      if (err instanceof RegistryError && err.status === 404)
        return err.errorCode === 40401 ? 'no-subject' : 'no-schema'
      throw err
    }
  }

  /** Whether `schema` may become the next version of `subject` under its compatibility level. */
  async compatible(subject: string, schema: string): Promise<boolean> {
    const body = await this.call('POST', `/compatibility/subjects/${enc(subject)}/versions/latest`, {
      schema,
    })
    return (body as { is_compatible: boolean }).is_compatible
  }

  async setCompatibility(subject: string, level: 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'NONE'): Promise<void> {
    await this.call('PUT', `/config/${enc(subject)}`, { compatibility: level })
  }

  /** The schema text registered under `id`. */
  async schemaById(id: number): Promise<string> {
    return ((await this.call('GET', `/schemas/ids/${id}`)) as { schema: string }).schema
  }

  close(): void {
    this.agent.destroy()
  }

  private call(method: string, path: string, payload?: unknown): Promise<unknown> {
    const url = `${this.base}${path}`
    const data = payload === undefined ? undefined : JSON.stringify(payload)
    const mod = this.options.url.protocol === 'https:' ? https : http
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        { method, agent: this.agent, headers: this.headers, timeout: this.timeoutMs },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', reject)
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString()
            let body: { message?: string; error_code?: number } | undefined
            try {
              body = JSON.parse(text)
            } catch {
              body = undefined
            }
            const status = res.statusCode ?? 0
            if (status >= 200 && status < 300 && body !== undefined) return resolve(body)
            const why = body?.message ?? text.slice(0, 200)
            reject(
              new RegistryError(
                `schema registry: ${method} ${path} → ${status}: ${why}`,
                status,
                body?.error_code,
              ),
            )
          })
        },
      )
      req.on('timeout', () => req.destroy(new Error(`schema registry: ${method} ${path} timed out`)))
      req.on('error', (err) =>
        reject(new Error(`schema registry ${this.base}: ${method} ${path}: ${err.message}`, { cause: err })),
      )
      req.end(data)
    })
  }
}

function enc(subject: string): string {
  return encodeURIComponent(subject)
}
