import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { buildE2E } from '../helpers/e2e.ts'
import { freePort, startWebdavServer } from '../helpers/servers.ts'
import { AgentClient } from '../../src/agent/client.ts'

// A real control-plane process (`node --import tsx src/server.ts`, SQLite registry) is
// SIGKILLed while an add is in the agent's hands. The agent finishes; a restarted control plane
// on the same data dir finds the pending entry and reconciliation completes it, so registry and
// VM agree and the caller's retry finds the mount.

const run = promisify(execFile)

/** Reads a file through a mount in a child process: a dead FUSE mount can hang the reader. */
async function readThrough (file: string): Promise<string | undefined> {
  try {
    return (await run('timeout', ['5', 'cat', file], { encoding: 'utf8' })).stdout
  } catch {
    return undefined
  }
}

t.test('a real control-plane process SIGKILLed in the middle of an add', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  await writeFile(path.join(dav.dir, 'f.txt'), 'slow\n')
  // The WebDAV server answers through a proxy that holds every answer back, so the add is
  // still in the agent's preflight when the control plane dies.
  let holdMs = 2500
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', c => chunks.push(c as Buffer))
    req.on('end', () => {
      setTimeout(() => {
        fetch(new URL(req.url ?? '/', dav.url), { method: req.method, headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => !['host', 'connection', 'content-length'].includes(k)).map(([k, v]) => [k, String(v)])), ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}) })
          .then(async r => { res.writeHead(r.status, Object.fromEntries(r.headers)); res.end(Buffer.from(await r.arrayBuffer())) }, () => res.destroy())
      }, holdMs)
    })
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { proxy.closeAllConnections(); await new Promise(resolve => proxy.close(resolve)) })
  const slowUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`

  const e = await buildE2E(t)
  const dataDir = await mkdtemp(path.join(tmpdir(), 'sandbox-mounts-kill-'))
  t.teardown(async () => { await rm(dataDir, { recursive: true, force: true }) })
  const key = 'acme-key-0123456789abcdef'
  const internal = 'internal-token-0123456789abcdef'
  const env = { PATH: process.env.PATH ?? '', API_KEYS: `acme:${key}`, INTERNAL_TOKEN: internal, ENCRYPTION_KEY: randomBytes(32).toString('base64'), LOCAL_SANDBOX: '', DATA_DIR: dataDir, LOG_LEVEL: 'warn', RECONCILE_INTERVAL_MS: '0' }
  const root = path.resolve(import.meta.dirname, '../..')
  const start = async (): Promise<{ url: string, kill: () => void, exited: Promise<unknown> }> => {
    const port = await freePort()
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: root, env: { ...env, PORT: String(port) }, stdio: 'ignore' })
    const exited = new Promise(resolve => proc.once('exit', resolve))
    t.teardown(() => { proc.kill('SIGKILL') })
    const url = `http://127.0.0.1:${port}`
    for (let i = 0; i < 150; i++) {
      if (proc.exitCode !== null) throw new Error('control plane exited')
      try { if ((await fetch(`${url}/readyz`)).ok) return { url, kill: () => proc.kill('SIGKILL'), exited } } catch {}
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    throw new Error('control plane did not start')
  }
  const api = async (url: string, method: string, p: string, body?: unknown, token = key): Promise<{ status: number, json: any }> => {
    const res = await fetch(url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    const text = await res.text()
    return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
  }

  const first = await start()
  t.equal((await api(first.url, 'PUT', '/internal/sandboxes/e2e', { tenant: 'acme', agentUrl: e.agentUrl, agentToken: e.agentToken }, internal)).status, 201)
  const mnt = path.join(e.root, 'killed')
  const pending = api(first.url, 'POST', '/sandboxes/e2e/mounts', { path: mnt, remote: 'dav:', backend: 'webdav', creds: { url: slowUrl, user: dav.user, pass: dav.pass } }).catch(err => ({ status: 0, json: String(err) }))
  await new Promise(resolve => setTimeout(resolve, 1000))
  first.kill()
  await first.exited
  t.equal((await pending).status, 0, 'the caller never got an answer')

  // The agent carries on with the add it was given; wait for it to settle.
  const client = new AgentClient({ timeoutMs: 60000 })
  const target = { sandboxId: 'e2e', url: e.agentUrl, token: e.agentToken }
  for (let i = 0; i < 60 && (await client.list(target)).length === 0; i++) await new Promise(resolve => setTimeout(resolve, 250))
  const live = await client.list(target)
  t.equal(live.length, 1, 'the VM finished the mount after the control plane died')
  holdMs = 0

  const second = await start()
  const listed = await api(second.url, 'GET', '/sandboxes/e2e/mounts')
  t.same(listed.json.mounts.map((m: { status: string }) => m.status), ['pending'], 'the registry kept the reservation as pending')
  const rec = await api(second.url, 'POST', '/sandboxes/e2e/mounts/reconcile')
  t.equal(rec.status, 200)
  t.same(rec.json.mounts.map((m: { action: string, status: string }) => [m.action, m.status]), [['add_completed', 'mounted']], 'the restarted control plane completes the add')
  const after = await api(second.url, 'GET', '/sandboxes/e2e/mounts')
  t.same(after.json.mounts.map((m: { id: string }) => m.id), (await client.list(target)).map(m => m.mountId), 'registry and VM agree')
  t.equal(await readThrough(path.join(mnt, 'f.txt')), 'slow\n', 'and the mount serves')
  const retry = await api(second.url, 'POST', '/sandboxes/e2e/mounts', { path: mnt, remote: 'dav:', backend: 'webdav', creds: { url: slowUrl, user: dav.user, pass: dav.pass } })
  t.equal(retry.status, 200, 'the caller\'s retry finds the same mount')
  t.equal(retry.json.id, after.json.mounts[0].id)
  t.equal((await api(second.url, 'DELETE', `/sandboxes/e2e/mounts/${retry.json.id as string}`)).status, 204)
  t.same(await client.list(target), [], 'removed from the VM')
})
