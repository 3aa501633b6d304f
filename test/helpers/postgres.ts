import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'

// A real PostgreSQL 15 for tests: a throwaway cluster owned by the postgres OS user,
// listening on 127.0.0.1 only, tuned for speed over durability. One cluster serves a whole
// `tap` run (test/setup/before.ts records it in a state file); each caller gets its own
// fresh database inside it.

const run = promisify(execFile)
const BIN = '/usr/lib/postgresql/15/bin'

export interface PgCluster {
  readonly dir: string
  readonly port: number
  /** Superuser URL of the `postgres` database. */
  readonly url: string
  /** pg_ctl stop -m fast: ends every session; the data stays for start(). */
  stop: () => Promise<void>
  /** Starts the stopped cluster again on the same port. */
  start: () => Promise<void>
  /** Stops immediately and deletes the cluster's directory. */
  destroy: () => Promise<void>
}

export interface PgState {
  url: string
  dir: string
  port: number
}

/**
 * Where the run's cluster is recorded: keyed by the tap process (the parent of the `before`
 * script and of every test file), so two runs on one machine never share or clobber a cluster.
 */
export function pgStatePath (): string {
  return process.env.TEST_PG_STATE ?? path.join(tmpdir(), `sandbox-mounts-test-pg-${process.ppid}.json`)
}

export function readPgState (): PgState | undefined {
  try {
    return JSON.parse(readFileSync(pgStatePath(), 'utf8')) as PgState
  } catch {
    return undefined
  }
}

export function writePgState (state: PgState): void {
  // The URL carries the cluster's password.
  writeFileSync(pgStatePath(), JSON.stringify(state), { mode: 0o600 })
}

export async function startCluster (): Promise<PgCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sandbox-mounts-pg-'))
  const { uid, gid } = postgresUser()
  chownSync(dir, uid, gid)
  const password = randomBytes(18).toString('hex')
  const pwfile = path.join(dir, 'pwfile')
  writeFileSync(pwfile, password + '\n', { mode: 0o600 })
  chownSync(pwfile, uid, gid)
  try {
    await asPostgres(`${BIN}/initdb`, ['-D', path.join(dir, 'data'), '-U', 'postgres', `--pwfile=${pwfile}`,
      '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'])
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  } finally {
    rmSync(pwfile, { force: true })
  }

  let port = 0
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    try {
      await pgCtlStart(dir, port)
      break
    } catch (err) {
      // Another process may have taken the probed port in between: try another.
      if (attempt >= 2) {
        rmSync(dir, { recursive: true, force: true })
        throw err
      }
    }
  }
  return {
    dir,
    port,
    url: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => { await asPostgres(`${BIN}/pg_ctl`, ['-D', path.join(dir, 'data'), '-m', 'fast', '-w', 'stop']) },
    start: async () => { await pgCtlStart(dir, port) },
    destroy: async () => { destroyClusterSync(dir) }
  }
}

/** Synchronous so it can run from a process 'exit' handler. */
export function destroyClusterSync (dir: string): void {
  if (existsSync(path.join(dir, 'data', 'postmaster.pid'))) {
    try {
      execFileSync('runuser', ['-u', 'postgres', '--', `${BIN}/pg_ctl`, '-D', path.join(dir, 'data'), '-m', 'immediate', '-w', 'stop'],
        { stdio: 'ignore' })
    } catch {}
  }
  rmSync(dir, { recursive: true, force: true })
}

let privateCluster: Promise<PgCluster> | undefined

/** Superuser URL of the run's shared cluster, or of a private one when running a file alone. */
export async function adminUrl (): Promise<string> {
  const state = readPgState()
  if (state !== undefined && await reachable(state.url)) return state.url
  privateCluster ??= startCluster().then(cluster => {
    process.once('exit', () => { destroyClusterSync(cluster.dir) })
    return cluster
  })
  return (await privateCluster).url
}

/** Creates a fresh, empty database and returns its URL. */
export async function testDatabaseUrl (): Promise<string> {
  const admin = await adminUrl()
  const name = `t_${randomBytes(8).toString('hex')}`
  const client = new pg.Client({ connectionString: admin })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  const url = new URL(admin)
  url.pathname = `/${name}`
  return url.toString()
}

async function pgCtlStart (dir: string, port: number): Promise<void> {
  const settings = [
    `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir}`,
    '-c fsync=off -c synchronous_commit=off -c full_page_writes=off',
    '-c max_connections=300 -c shared_buffers=64MB'
  ].join(' ')
  await asPostgres(`${BIN}/pg_ctl`, ['-D', path.join(dir, 'data'), '-l', path.join(dir, 'server.log'),
    '-w', '-t', '60', '-o', settings, 'start'])
}

async function asPostgres (bin: string, args: string[]): Promise<void> {
  await run('runuser', ['-u', 'postgres', '--', bin, ...args], { cwd: tmpdir() })
}

async function reachable (url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

function postgresUser (): { uid: number, gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find(l => l.startsWith('postgres:'))
  if (line === undefined) throw new Error('no postgres OS user: apt-get install -y postgresql')
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}

// Its own copy of src/lib/free-port.ts: tap's `before` script loads this file, and tap measures
// coverage of the src/ files that script loads (then fails the run below 100%).
async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}
