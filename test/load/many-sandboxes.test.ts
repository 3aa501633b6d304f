import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { loadAgentConfig } from '../../src/agent/config.ts'
import { startAgent, type RunningAgent } from '../../src/agent/start.ts'
import { AgentClient } from '../../src/agent/client.ts'
import { captureStream, INTERNAL_TOKEN, TENANT_A, TENANT_B } from '../helpers/app.ts'
import { ensureSandboxUser } from '../helpers/sandbox-user.ts'
import { freePort, startWebdavServer } from '../helpers/servers.ts'
import { buildConfiguredApp } from './app.ts'

// Many sandboxes at once through the real control plane: each sandbox has its own real agent
// (own state and config dirs, own rclone daemon), all mounting one WebDAV server. Hundreds of
// concurrent adds (each path asked for twice at once), lists and removes: nothing is lost or
// duplicated, every request is answered within a bound, and nothing is left behind.

const SANDBOXES = 20
const PATHS = 3
const BOUND_MS = 30_000
const run = promisify(execFile)

async function rcdProcesses (root: string): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,args='], { maxBuffer: 16 << 20 })
  return stdout.split('\n').filter(l => l.includes('rclone') && l.includes(' rcd ') && l.includes(root))
}

async function fuseUnder (root: string): Promise<string[]> {
  return (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter(l => l.includes(' fuse.rclone ')).map(l => l.split(' ')[4]).filter(p => p.startsWith(root + '/'))
}

async function filesUnder (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const full = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...await filesUnder(full))
    else out.push(full)
  }
  return out
}

t.test(`${SANDBOXES} sandboxes, each with its own agent, under hundreds of concurrent requests`, async t => {
  await ensureSandboxUser()
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  await writeFile(path.join(dav.dir, 'shared.txt'), 'shared\n')
  const root = await mkdtemp(path.join(tmpdir(), 'sandbox-mounts-load-'))
  await chmod(root, 0o755)
  const agents: Array<{ id: string, tenant: typeof TENANT_A, agent: RunningAgent, token: string, stateDir: string, configDir: string, logs: string[] }> = []
  t.teardown(async () => {
    for (const a of agents) await a.agent.close().catch(() => {})
    // Whatever a failed run left: only daemons and mounts under this test's own root.
    for (const line of await rcdProcesses(root)) {
      try { process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL') } catch {}
    }
    for (const p of await fuseUnder(root)) await run('fusermount3', ['-uz', p]).catch(() => {})
    await rm(root, { recursive: true, force: true })
  })

  const c = await buildConfiguredApp(t, { RATE_LIMIT_PER_MINUTE: '0', MAX_IN_FLIGHT: '512' }, { agentTimeoutMs: 60_000 })
  // Asks the agents directly, to compare with the registry.
  const client = new AgentClient({ timeoutMs: 30_000 })
  const startedAgents = Date.now()
  for (let i = 0; i < SANDBOXES; i++) {
    const id = `load${i}`
    const token = randomBytes(24).toString('base64url')
    const stateDir = path.join(root, id, 'state')
    const configDir = path.join(root, id, 'run')
    const logs: string[] = []
    const config = loadAgentConfig({
      AGENT_TOKEN: token,
      AGENT_PORT: String(await freePort()),
      AGENT_STATE_DIR: stateDir,
      AGENT_CONFIG_DIR: configDir,
      AGENT_LOG_LEVEL: 'warn',
      AGENT_PREFLIGHT_TIMEOUT_MS: '20000',
      AGENT_MOUNT_TIMEOUT_MS: '30000',
      PATH: process.env.PATH ?? '/usr/bin:/bin'
    })
    const agent = await startAgent(config, { logStream: captureStream(logs), unmountOnClose: true, stopDaemonOnClose: true })
    const tenant = i % 2 === 0 ? TENANT_A : TENANT_B
    agents.push({ id, tenant, agent, token, stateDir, configDir, logs })
    const reg = await c.app.inject({ method: 'PUT', url: `/internal/sandboxes/${id}`, headers: c.auth(INTERNAL_TOKEN), payload: { tenant: tenant.tenant, agentUrl: agent.url, agentToken: token } })
    t.equal(reg.statusCode, 201, `${id} registered with its own agent`)
  }
  t.comment(`${SANDBOXES} agents started in ${Date.now() - startedAgents} ms`)

  const latencies: number[] = []
  const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
    const started = Date.now()
    try { return await fn() } finally { latencies.push(Date.now() - started) }
  }
  const mountPath = (sb: string, n: number): string => path.join(root, sb, 'mnt', `m${n}`)
  const addBody = (sb: string, n: number): object => ({ path: mountPath(sb, n), remote: 'dav:', backend: 'webdav', readWrite: n === 0, creds: { url: dav.url, user: dav.user, pass: dav.pass } })

  // Phase 1: every path asked for twice at once, with lists running alongside.
  const phase1 = Date.now()
  const adds: Array<Promise<{ sb: string, n: number, status: number, id?: string }>> = []
  const lists: Array<Promise<number>> = []
  for (const a of agents) {
    const h = c.auth(a.tenant.key)
    for (let n = 0; n < PATHS; n++) {
      for (let copy = 0; copy < 2; copy++) {
        adds.push(timed(async () => {
          const res = await c.app.inject({ method: 'POST', url: `/sandboxes/${a.id}/mounts`, headers: h, payload: addBody(a.id, n) })
          return { sb: a.id, n, status: res.statusCode, id: res.statusCode < 300 ? res.json().id : res.body }
        }))
      }
    }
    for (let k = 0; k < 4; k++) lists.push(timed(async () => (await c.app.inject({ method: 'GET', url: `/sandboxes/${a.id}/mounts${k % 2 === 0 ? '?refresh=true' : ''}`, headers: h })).statusCode))
  }
  const added = await Promise.all(adds)
  const listed = await Promise.all(lists)
  t.comment(`phase 1: ${adds.length} adds and ${lists.length} lists in ${Date.now() - phase1} ms`)
  t.same([...new Set(listed)], [200], 'every list answered 200')
  const failures = added.filter(r => r.status >= 300)
  t.same(failures, [], 'every add succeeded')
  for (const a of agents) {
    for (let n = 0; n < PATHS; n++) {
      const pair = added.filter(r => r.sb === a.id && r.n === n)
      t.same(pair.map(r => r.status).sort(), [200, 201], `${a.id} m${n}: one 201 and one 200`)
      if (pair[0].id !== pair[1].id) t.fail(`${a.id} m${n}: two different mounts for one path`)
    }
  }

  // Phase 2: remove one mount per sandbox by path and one by id, while listing and re-adding another path.
  const phase2 = Date.now()
  const ops: Array<Promise<{ label: string, status: number, want: number[] }>> = []
  for (const a of agents) {
    const h = c.auth(a.tenant.key)
    const byId = added.find(r => r.sb === a.id && r.n === 1)?.id as string
    ops.push(timed(async () => ({ label: `${a.id} remove m0 by path`, want: [204], status: (await c.app.inject({ method: 'DELETE', url: `/sandboxes/${a.id}/mounts?path=${encodeURIComponent(mountPath(a.id, 0))}`, headers: h })).statusCode })))
    ops.push(timed(async () => ({ label: `${a.id} remove m1 by id`, want: [204], status: (await c.app.inject({ method: 'DELETE', url: `/sandboxes/${a.id}/mounts/${byId}`, headers: h })).statusCode })))
    ops.push(timed(async () => ({ label: `${a.id} add m2 again`, want: [200], status: (await c.app.inject({ method: 'POST', url: `/sandboxes/${a.id}/mounts`, headers: h, payload: addBody(a.id, 2) })).statusCode })))
    ops.push(timed(async () => ({ label: `${a.id} add m3`, want: [201], status: (await c.app.inject({ method: 'POST', url: `/sandboxes/${a.id}/mounts`, headers: h, payload: addBody(a.id, 3) })).statusCode })))
    for (let k = 0; k < 3; k++) ops.push(timed(async () => ({ label: `${a.id} list`, want: [200], status: (await c.app.inject({ method: 'GET', url: `/sandboxes/${a.id}/mounts`, headers: h })).statusCode })))
    // Another tenant's key never reaches this sandbox, even under load.
    const other = a.tenant === TENANT_A ? TENANT_B : TENANT_A
    ops.push(timed(async () => ({ label: `${a.id} other tenant`, want: [404], status: (await c.app.inject({ method: 'GET', url: `/sandboxes/${a.id}/mounts`, headers: c.auth(other.key) })).statusCode })))
  }
  const results = await Promise.all(ops)
  t.comment(`phase 2: ${ops.length} requests in ${Date.now() - phase2} ms`)
  t.same(results.filter(r => !r.want.includes(r.status)).map(r => `${r.label}: ${r.status}`), [], 'every request got the expected answer')

  // Nothing lost or duplicated: registry, agent and kernel agree for every sandbox.
  for (const a of agents) {
    const registry = await c.store.listMounts(a.id)
    t.same(registry.map(m => path.basename(m.path)).sort(), ['m2', 'm3'], `${a.id}: exactly m2 and m3 in the registry`)
    const live = await client.list({ sandboxId: a.id, url: a.agent.url, token: a.token })
    t.same(live.map(m => m.mountId).sort(), registry.map(m => m.id).sort(), `${a.id}: the agent holds the same mounts`)
    t.same((await fuseUnder(path.join(root, a.id))).sort(), registry.map(m => m.path).sort(), `${a.id}: the same FUSE mounts`)
  }
  t.equal(await readFile(path.join(mountPath('load0', 2), 'shared.txt'), 'utf8'), 'shared\n', 'a mount serves the shared file')

  // Remove everything; nothing of it may remain.
  const removals = await Promise.all(agents.flatMap(a => [2, 3].map(async n => await timed(async () =>
    (await c.app.inject({ method: 'DELETE', url: `/sandboxes/${a.id}/mounts?path=${encodeURIComponent(mountPath(a.id, n))}`, headers: c.auth(a.tenant.key) })).statusCode))))
  t.same([...new Set(removals)], [204], 'every final remove answered 204')
  t.same(await fuseUnder(root), [], 'no FUSE mount left')
  for (const a of agents) {
    t.same((await readdir(a.configDir)).filter(f => f.startsWith('mnt_')), [], `${a.id}: no mount config left`)
    const cached = (await filesUnder(path.join(a.stateDir, 'cache'))).filter(f => !f.endsWith('.lock'))
    t.same(cached, [], `${a.id}: no cache files left`)
    t.same((await readdir(path.join(a.stateDir, 'mounts')).catch(() => [])), [], `${a.id}: no mount records left`)
  }
  for (const a of agents) await a.agent.close()
  const leftover = await rcdProcesses(root)
  t.same(leftover, [], 'no rclone daemon left running')

  const max = Math.max(...latencies)
  const sorted = [...latencies].sort((x, y) => x - y)
  t.comment(`${latencies.length} requests: median ${sorted[Math.floor(sorted.length / 2)]} ms, p95 ${sorted[Math.floor(sorted.length * 0.95)]} ms, max ${max} ms`)
  t.ok(max < BOUND_MS, `every request answered within ${BOUND_MS} ms (max ${max} ms)`)
  t.ok(latencies.length >= SANDBOXES * 15, `${latencies.length} requests in all`)
})
