import t from 'tap'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { processAlive } from '../../src/agent/rcd.ts'
import { countDirty } from '../../src/agent/vfs-cache.ts'
import { readMountinfo } from '../../src/agent/mountinfo.ts'
import { statWithTimeout } from '../../src/agent/probe.ts'
import { startWebdavServer } from '../helpers/servers.ts'
import { runAs } from '../helpers/sandbox-user.ts'
import { davRequest, leftovers, startTestAgent, waitFor, type TestAgent } from './fixture.ts'

// Supervision of the one rclone daemon: a killed daemon shows as failed mounts and is replaced
// on the next apply; a restarted agent adopts the running daemon; unsent writes of a killed
// daemon are uploaded by the re-applied mount; a remote that starts refusing shows as degraded.

async function rcdPid (agent: TestAgent): Promise<number> {
  return (JSON.parse(await readFile(join(agent.config.stateDir, 'rcd.json'), 'utf8')) as { pid: number }).pid
}

async function killRcd (agent: TestAgent): Promise<number> {
  const pid = await rcdPid(agent)
  process.kill(pid, 'SIGKILL')
  await waitFor(async () => !(await processAlive(pid)), 5000, 20)
  return pid
}

t.test('a killed daemon: mounts report failed, re-apply cleans the stale entry and mounts again', async t => {
  const dav = await startWebdavServer()
  t.teardown(() => dav.stop())
  await writeFile(join(dav.dir, 'hello.txt'), 'hi')
  const agent = await startTestAgent(t)
  const path = join(agent.base, 'm')
  const req = davRequest(dav, path)
  t.equal((await agent.put('k1', req)).statusCode, 201)
  const health = await agent.get('/healthz')
  t.match(health.json(), { ok: true, rcd: 'running', mounts: 1 })

  const oldPid = await killRcd(agent)
  // the kernel answers stat from its attribute cache for up to --attr-timeout (1 s)
  const dead = await waitFor(async () => { const st = await statWithTimeout(path, 2000); return st.ok ? undefined : st }, 5000)
  t.equal(dead.ok === false && dead.reason, 'not-connected', 'the kernel entry is dead (ENOTCONN)')
  const got = await agent.get('/v1/mounts/k1')
  t.equal(got.json().status, 'failed')
  t.match(got.json().lastError, /daemon/)
  t.equal((await agent.get('/v1/mounts')).json().mounts[0].status, 'failed')
  t.equal((await agent.get('/healthz')).json().rcd, 'stopped')

  const again = await agent.put('k1', req)
  t.equal(again.statusCode, 200, again.body)
  t.match(again.json(), { status: 'mounted', outcome: 'replaced' })
  t.not(await rcdPid(agent), oldPid, 'a new daemon was started')
  t.equal((await readMountinfo()).filter(e => e.mountPoint === path).length, 1, 'the stale entry is gone')
  t.equal((await runAs('sandbox', ['cat', join(path, 'hello.txt')])).stdout, 'hi')
  t.equal((await agent.get('/v1/mounts/k1')).json().status, 'mounted')

  // removing a dead mount works too
  await killRcd(agent)
  t.equal((await agent.del('k1')).statusCode, 204)
  t.same(await leftovers(agent, 'k1', path), [])
})

t.test('writes not yet uploaded when the daemon died are uploaded by the re-applied mount', async t => {
  const dav = await startWebdavServer()
  t.teardown(() => dav.stop())
  const agent = await startTestAgent(t)
  const path = join(agent.base, 'rw')
  t.equal((await agent.put('p1', davRequest(dav, path, { readWrite: true, mountOptions: ['--vfs-write-back', '1m'] }))).statusCode, 201)
  const w = await runAs('sandbox', ['sh', '-c', `printf pending > ${path}/pending.txt`])
  t.equal(w.code, 0, w.stderr)
  // The close reaches rclone asynchronously; kill it only once it has recorded the write.
  const metaDir = join(agent.config.stateDir, 'cache', 'vfsMeta')
  const recorded = await waitFor(async () => {
    for (const name of await readdir(metaDir).catch(() => [])) if (await countDirty(join(agent.config.stateDir, 'cache'), name) > 0) return true
    return null
  }, 10_000)
  t.ok(recorded, 'rclone recorded the pending write')
  await killRcd(agent)
  t.notOk(await stat(join(dav.dir, 'pending.txt')).then(() => true, () => false), 'never uploaded')

  const removal = await agent.del('p1')
  t.equal(removal.statusCode, 409, 'a remove would lose the write: refused')
  t.equal(removal.json().error.code, 'FLUSH_TIMEOUT')
  t.match(removal.json().error.message, /1 file\(s\).*re-apply/)

  // re-rendered config (fresh obscure IV): a new backend name, the pending write moves with it
  const re = await agent.put('p1', davRequest(dav, path, { readWrite: true }))
  t.equal(re.statusCode, 200, re.body)
  t.equal(await waitFor(async () => await readFile(join(dav.dir, 'pending.txt'), 'utf8').catch(() => null), 15_000), 'pending')
  t.equal((await agent.del('p1')).statusCode, 204)
  t.same(await leftovers(agent, 'p1', path), [])
})

t.test('a restarted agent adopts the running daemon and its mounts', async t => {
  const dav = await startWebdavServer()
  t.teardown(() => dav.stop())
  await writeFile(join(dav.dir, 'a.txt'), 'a')
  const agent = await startTestAgent(t)
  const path = join(agent.base, 'adopt')
  const req = davRequest(dav, path)
  const first = await agent.put('a1', req)
  t.equal(first.statusCode, 201)
  const pid = await rcdPid(agent)
  await agent.restart()
  t.equal(await rcdPid(agent), pid, 'same daemon')
  t.ok(agent.logs().includes('adopted the running rclone daemon'))
  const got = await agent.get('/v1/mounts/a1')
  t.match(got.json(), { status: 'mounted', configHash: first.json().configHash })
  t.equal((await agent.put('a1', req)).json().outcome, 'unchanged', 'the new agent knows the mount')
  t.equal((await agent.del('a1')).statusCode, 204)
  t.same(await leftovers(agent, 'a1', path), [])
})

t.test('a remote that starts refusing the credentials: degraded, scrubbed lastError', async t => {
  const dav = await startWebdavServer({ pass: 'first-password-1' })
  let current = dav
  t.teardown(() => current.stop())
  await mkdir(join(dav.dir, 'd'))
  const agent = await startTestAgent(t)
  const path = join(agent.base, 'deg')
  const req = davRequest(dav, path)
  t.equal((await agent.put('d1', req)).statusCode, 201)
  t.equal((await agent.get('/v1/mounts/d1')).json().status, 'mounted')

  // same address and data, new password: the mount's credentials no longer work
  await dav.stop()
  current = await startWebdavServer({ user: dav.user, pass: 'second-password-2', port: dav.port })
  const degraded = await waitFor(async () => {
    const m = (await agent.get('/v1/mounts/d1')).json()
    return m.status === 'degraded' ? m : undefined
  }, 15_000, 500)
  t.match(degraded.lastError, /401|Unauthorized/)
  for (const secret of req.redact) t.notOk(JSON.stringify(degraded).includes(secret))
  t.equal((await agent.del('d1', true)).statusCode, 204)
})

t.test('a hung daemon never blocks the agent; a restarted agent after the daemon died reports failed', async t => {
  const dav = await startWebdavServer()
  t.teardown(() => dav.stop())
  await writeFile(join(dav.dir, 'h.txt'), 'h')
  const agent = await startTestAgent(t)
  const path = join(agent.base, 'hung')
  const req = davRequest(dav, path)
  t.equal((await agent.put('h1', req)).statusCode, 201)
  const pid = await rcdPid(agent)
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGKILL') } catch {} })
  await new Promise(resolve => setTimeout(resolve, 1200))
  const started = Date.now()
  const got = await agent.get('/v1/mounts/h1')
  t.ok(Date.now() - started < 15_000, `answered in ${Date.now() - started} ms`)
  t.equal(got.json().status, 'failed', 'a daemon that does not answer counts as gone')
  t.notOk(await processAlive(pid), 'the hung daemon was put down')

  // the next agent process starts a fresh daemon and still knows the mount
  await agent.restart()
  t.not(await rcdPid(agent), pid)
  t.equal((await agent.get('/v1/mounts/h1')).json().status, 'failed')
  const again = await agent.put('h1', req)
  t.equal(again.statusCode, 200, again.body)
  t.equal((await runAs('sandbox', ['cat', join(path, 'h.txt')])).stdout, 'h')
})
