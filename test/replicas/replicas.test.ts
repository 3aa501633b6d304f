import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { testDatabaseUrl } from '../helpers/postgres.ts'
import { freePort } from '../helpers/servers.ts'
import { startAgentDouble } from '../helpers/agent-double.ts'

// Two control-plane processes on one PostgreSQL registry, as behind a load balancer.

const KEY = 'acme-key-0123456789abcdef'
const INTERNAL = 'internal-token-0123456789abcdef'
const ROOT = path.resolve(import.meta.dirname, '../..')

interface Replica { url: string, proc: ChildProcess, output: string[] }

async function startReplica (t: Test, env: Record<string, string>): Promise<Replica> {
  const port = await freePort()
  const output: string[] = []
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  proc.stdout?.on('data', d => output.push(String(d)))
  proc.stderr?.on('data', d => output.push(String(d)))
  t.teardown(() => { proc.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30000
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`replica exited: ${output.join('')}`)
    try {
      const res = await fetch(`${url}/readyz`)
      if (res.ok) return { url, proc, output }
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`replica did not become ready: ${output.join('')}`)
}

const call = async (url: string, method: string, pathname: string, body?: unknown, token = KEY): Promise<{ status: number, json: any }> => {
  const res = await fetch(url + pathname, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
}

t.test('two replicas on one PostgreSQL: one mount per path, shared answers, lease takeover', async t => {
  const databaseUrl = await testDatabaseUrl()
  const agent = await startAgentDouble()
  t.teardown(async () => { await agent.close() })
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sandbox-mounts-replicas-'))
  t.teardown(() => { rmSync(dataDir, { recursive: true, force: true }) })
  const env = {
    DATABASE_URL: databaseUrl,
    API_KEYS: `acme:${KEY}`,
    INTERNAL_TOKEN: INTERNAL,
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    LOCAL_SANDBOX: '',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RECONCILE_INTERVAL_MS: '300',
    RECONCILE_LEASE_MS: '2000'
  }
  const [r1, r2] = await Promise.all([startReplica(t, env), startReplica(t, env)])

  const reg = await call(r1.url, 'PUT', '/internal/sandboxes/sb1', { tenant: 'acme', agentUrl: agent.url, agentToken: agent.token }, INTERNAL)
  t.equal(reg.status, 201)

  agent.delayMs = 30
  const body = { path: '/mnt/shared', remote: 'dav:x', backend: 'webdav', creds: { url: 'http://127.0.0.1:9/', user: 'u', pass: 'p' } }
  const results = await Promise.all(Array.from({ length: 10 }, async (_, i) => await call(i % 2 === 0 ? r1.url : r2.url, 'POST', '/sandboxes/sb1/mounts', body)))
  t.same(results.map(r => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 200, 200, 201], 'exactly one created, the rest see it')
  t.equal(new Set(results.map(r => r.json.id)).size, 1, 'every answer names the same mount')
  t.equal(agent.calls.filter(c => c.method === 'PUT').length, 1, 'applied once across both replicas')
  const [l1, l2] = await Promise.all([call(r1.url, 'GET', '/sandboxes/sb1/mounts'), call(r2.url, 'GET', '/sandboxes/sb1/mounts')])
  t.same(l1.json, l2.json, 'both replicas list the same')
  t.equal(l1.json.mounts.length, 1)

  // Idempotency keys are honoured whichever replica receives the retry.
  const idem = { path: '/mnt/idem', remote: 'dav:y', backend: 'webdav', creds: body.creds }
  const first = await fetch(`${r1.url}/sandboxes/sb1/mounts`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'idempotency-key': 'k-1' }, body: JSON.stringify(idem) })
  const retry = await fetch(`${r2.url}/sandboxes/sb1/mounts`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'idempotency-key': 'k-1' }, body: JSON.stringify(idem) })
  t.equal(first.status, 201)
  t.equal(retry.status, 201)
  t.equal(retry.headers.get('idempotent-replayed'), 'true')
  t.equal(agent.calls.filter(c => c.method === 'PUT').length, 2)
  agent.delayMs = 0

  // Periodic reconciliation: one replica holds the sandbox's lease; kill it and the other takes over.
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  t.teardown(async () => { await db.end() })
  const holderNow = async (): Promise<string | undefined> =>
    (await db.query('SELECT holder FROM leases WHERE name = $1', ['reconcile:sb1'])).rows[0]?.holder
  let holder: string | undefined
  for (let i = 0; i < 50 && holder === undefined; i++) {
    holder = await holderNow()
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.ok(holder, 'a replica holds the lease')
  const ids = await Promise.all([r1, r2].map(async r => (await call(r.url, 'GET', '/healthz')).json.replica as string))
  const victim = ids[0] === holder ? r1 : r2
  const survivorId = ids[0] === holder ? ids[1] : ids[0]
  victim.proc.kill('SIGKILL')
  const killedAt = Date.now()
  let taken: number | undefined
  while (Date.now() - killedAt < 10000) {
    if (await holderNow() === survivorId) { taken = Date.now() - killedAt; break }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.ok(taken !== undefined, 'the surviving replica took the lease over')
  t.ok((taken ?? Infinity) <= 2000 + 300 + 1500, `within the lease time (${taken ?? '-'} ms)`)
  const listsBefore = agent.calls.filter(c => c.method === 'GET' && c.url === '/v1/mounts').length
  await new Promise(resolve => setTimeout(resolve, 1000))
  t.ok(agent.calls.filter(c => c.method === 'GET' && c.url === '/v1/mounts').length > listsBefore, 'and keeps reconciling the sandbox')
})
