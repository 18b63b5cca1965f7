// Makes sure a local PostgreSQL answers for the integration tests: starts the Debian cluster when
// it is down, creates a role and a database with random names (dropped on teardown). Tests that
// need a clean schema create their own database with freshDatabase() and drop it after.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { warnLoudly } from './services.js'

const CLUSTER = ['15', 'main']

function psql(sql: string): void {
  execFileSync('runuser', ['-u', 'postgres', '--', 'psql', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
}

function clusterOnline(): boolean | null {
  const r = spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' })
  if (r.error) return null
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${CLUSTER[0]} ${CLUSTER[1]} `))
  if (!line) return null
  return /\bonline\b/.test(line)
}

export interface PostgresHandle {
  url: string
  teardown(): void
}

/** null when PostgreSQL cannot run here (tests skip); in CI that is an error instead. */
export async function ensurePostgres(): Promise<PostgresHandle | null> {
  const unavailable = (reason: string): null => {
    if (process.env.CI === 'true')
      throw new Error(`${reason}. PostgreSQL tests must run in CI: install postgresql (see .ci/run).`)
    warnLoudly(`${reason}: PostgreSQL integration tests will be SKIPPED.`)
    return null
  }
  let online = clusterOnline()
  if (online === null) return unavailable(`no PostgreSQL ${CLUSTER.join('/')} cluster (pg_lsclusters)`)
  if (!online) {
    const r = spawnSync('pg_ctlcluster', [...CLUSTER, 'start'], { encoding: 'utf8' })
    online = clusterOnline()
    if (!online) return unavailable(`pg_ctlcluster ${CLUSTER.join(' ')} start failed: ${r.stderr.trim()}`)
  }
  const name = `adgate_test_${randomBytes(4).toString('hex')}`
  const password = randomBytes(12).toString('hex')
  try {
    psql(`CREATE ROLE ${name} LOGIN CREATEDB PASSWORD '${password}'`)
    psql(`CREATE DATABASE ${name} OWNER ${name}`)
  } catch (err) {
    return unavailable(
      `cannot create a test role and database: ${(err as { stderr?: Buffer }).stderr ?? err}`,
    )
  }
  const port = portOf()
  return {
    url: `postgres://${name}:${password}@127.0.0.1:${port}/${name}`,
    teardown() {
      psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      // Databases the tests created and did not drop (a failed test) go with their owner.
      const leftovers = execFileSync(
        'runuser',
        [
          '-u',
          'postgres',
          '--',
          'psql',
          '-At',
          '-c',
          `SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = '${name}')`,
        ],
        { encoding: 'utf8' },
      )
      for (const db of leftovers.split('\n').filter(Boolean))
        psql(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`)
      psql(`DROP ROLE IF EXISTS ${name}`)
    },
  }
}

function portOf(): number {
  const r = spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' })
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${CLUSTER[0]} ${CLUSTER[1]} `))
  return Number(line?.split(/\s+/)[2] ?? 5432)
}

const INSUFFICIENT_PRIVILEGE = '42501'

/** A new empty database owned by the test role; `drop` removes it. */
export async function freshDatabase(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `adgate_t_${randomBytes(5).toString('hex')}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const u = new URL(url)
  u.pathname = `/${name}`
  return {
    url: u.toString(),
    // FORCE cannot end an autovacuum worker busy on the database (the test role may not signal
    // it: 'must be a member of the role whose process is being terminated', seen once in CI after
    // the tables' last writes); it is done within seconds, so the drop is tried again, and one
    // still refused is left to the teardown, which drops the role's databases as postgres.
    async drop() {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        for (let attempt = 1; ; attempt++) {
          try {
            await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
            return
          } catch (err) {
            if ((err as { code?: string }).code !== INSUFFICIENT_PRIVILEGE) throw err
            if (attempt === 10) {
              console.warn(`${name} not dropped (${(err as Error).message}); the teardown drops it`)
              return
            }
            await new Promise((r) => setTimeout(r, 1000))
          }
        }
      } finally {
        await c.end()
      }
    },
  }
}
