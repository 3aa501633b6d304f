import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { buildE2E, type E2E } from '../helpers/e2e.ts'
import { TENANT_A } from '../helpers/app.ts'
import { startSftpServer, startWebdavServer } from '../helpers/servers.ts'
import { AgentClient, configFingerprint } from '../../src/agent/client.ts'
import { applyRequest } from '../../src/mounts/service.ts'

// Faults with the real agent, real rclone and real servers on loopback: the rclone daemon
// killed, a FUSE mount left dead, the backend going away and coming back, and the control plane
// dying at each step of add, remove and rotate (the registry left as a SIGKILL leaves it; a real
// SIGKILL of a control-plane process is in control-plane-kill.test.ts).
// After reconciliation the registry and the VM agree: no mount without a record, no record
// without a live mount.

const run = promisify(execFile)

interface MountInfo { mountPoint: string, fsType: string, minor: string }

async function fuseMounts (under: string): Promise<MountInfo[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  return text.split('\n').filter(Boolean).map(line => {
    const f = line.split(' ')
    const dash = f.indexOf('-')
    return { mountPoint: f[4].replace(/\\040/g, ' '), fsType: f[dash + 1], minor: f[2].split(':')[1] }
  }).filter(m => m.fsType === 'fuse.rclone' && m.mountPoint.startsWith(under + '/'))
}

/** Reads a file through a mount in a child process: a dead FUSE mount can hang the reader. */
async function readThrough (file: string): Promise<string | undefined> {
  try {
    return (await run('timeout', ['5', 'cat', file], { encoding: 'utf8' })).stdout
  } catch {
    return undefined
  }
}

function agentClient (e: E2E): { client: AgentClient, target: { sandboxId: string, url: string, token: string } } {
  return { client: new AgentClient({ timeoutMs: 60000 }), target: { sandboxId: 'e2e', url: e.agentUrl, token: e.agentToken } }
}

/** The registry and the VM hold the same mounts, and every one of them is live and readable. */
async function agree (t: Test, e: E2E, label: string, probe?: Record<string, string>): Promise<void> {
  const { client, target } = agentClient(e)
  const registry = await e.store.listMounts('e2e')
  const live = await client.list(target)
  t.same(live.map(m => m.mountId).sort(), registry.map(m => m.id).sort(), `${label}: the agent knows exactly the registry's mounts`)
  const mounted = (await fuseMounts(e.root)).map(m => m.mountPoint).sort()
  t.same(mounted, registry.map(m => m.path).sort(), `${label}: exactly the registry's paths are FUSE mounts`)
  t.same(registry.filter(m => m.status !== 'mounted').map(m => `${m.path}: ${m.status}`), [], `${label}: every entry is mounted`)
  for (const [file, content] of Object.entries(probe ?? {})) t.equal(await readThrough(file), content, `${label}: ${path.basename(path.dirname(file))} serves its files`)
}

async function reconcile (t: Test, e: E2E): Promise<Array<{ mountId: string, action: string, status: string }>> {
  const res = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts/reconcile', headers: e.auth(TENANT_A.key) })
  t.equal(res.statusCode, 200, res.body)
  return res.json().mounts
}

t.test('rcd SIGKILLed, a FUSE mount aborted, the backend gone and back', async t => {
  const davDir = await mkdtemp(path.join(tmpdir(), 'real-faults-dav-'))
  t.teardown(async () => { await rm(davDir, { recursive: true, force: true }) })
  await writeFile(path.join(davDir, 'f.txt'), 'dav\n')
  const dav = await startWebdavServer({ dir: davDir })
  t.teardown(async () => { await dav.stop() })
  const sftp = await startSftpServer()
  t.teardown(sftp.stop)
  await writeFile(path.join(sftp.root, 's.txt'), 'sftp\n')
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const davPath = path.join(e.root, 'mnt', 'dav')
  const sftpPath = path.join(e.root, 'mnt', 'sftp')
  const davCreds = { url: dav.url, user: dav.user, pass: dav.pass }
  const a = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: davPath, remote: 'dav:', backend: 'webdav', creds: davCreds } })
  const b = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: sftpPath, remote: 'box:', backend: 'sftp', creds: { host: sftp.host, port: sftp.port, user: sftp.user, pass: sftp.password } } })
  t.equal(a.statusCode, 201, a.body)
  t.equal(b.statusCode, 201, b.body)
  const probe = { [path.join(davPath, 'f.txt')]: 'dav\n', [path.join(sftpPath, 's.txt')]: 'sftp\n' }
  await agree(t, e, 'at the start', probe)

  // 1. The daemon hosting both mounts is SIGKILLed: both show failed, reconciliation remounts both.
  const pid = (JSON.parse(await readFile(path.join(e.agentConfig.stateDir, 'rcd.json'), 'utf8')) as { pid: number }).pid
  process.kill(pid, 'SIGKILL')
  await new Promise(resolve => setTimeout(resolve, 200))
  for (const m of [a, b]) {
    const got = await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${m.json().id as string}`, headers: h })
    t.equal(got.json().status, 'failed', `${m.json().path as string}: failed once its daemon is gone`)
    t.ok(typeof got.json().lastError === 'string' && got.json().lastError.length > 0, 'with a reason')
  }
  t.equal(await readThrough(path.join(davPath, 'f.txt')), undefined, 'the stale mount does not serve (ENOTCONN)')
  const afterKill = await reconcile(t, e)
  t.same(afterKill.map(m => [m.action, m.status]), [['remounted', 'mounted'], ['remounted', 'mounted']], 'both remounted')
  await agree(t, e, 'after the daemon was killed', probe)
  const newPid = (JSON.parse(await readFile(path.join(e.agentConfig.stateDir, 'rcd.json'), 'utf8')) as { pid: number }).pid
  t.not(newPid, pid, 'a new daemon serves them')

  // 2. One FUSE connection aborted while the daemon lives on: only that mount is dead.
  const ctl = '/sys/fs/fuse/connections'
  const fusectlMounted = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some(l => l.split(' ')[4] === ctl)
  if (!fusectlMounted) {
    await run('mount', ['-t', 'fusectl', 'none', ctl])
    t.teardown(async () => { await run('umount', [ctl]).catch(() => {}) })
  }
  const davConn = (await fuseMounts(e.root)).find(m => m.mountPoint === davPath)
  t.ok(davConn, 'the dav mount has a FUSE connection')
  await writeFile(path.join(ctl, davConn?.minor ?? 'none', 'abort'), '1')
  t.equal(await readThrough(path.join(davPath, 'f.txt')), undefined, 'the aborted mount does not serve')
  t.equal(await readThrough(path.join(sftpPath, 's.txt')), 'sftp\n', 'the other mount of the same daemon still serves')
  const davGet = await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${a.json().id as string}`, headers: h })
  t.equal(davGet.json().status, 'failed', 'the aborted mount is reported failed')
  const afterAbort = await reconcile(t, e)
  t.same(afterAbort.map(m => m.action).sort(), ['none', 'remounted'], 'only the dead one is remounted')
  await agree(t, e, 'after the FUSE abort', probe)

  // 3. The WebDAV server goes away: degraded with a reason; it comes back on the same port: mounted.
  const port = dav.port
  await dav.stop()
  // The agent keeps a probe answer for a few seconds: poll until it has noticed.
  let down = await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${a.json().id as string}`, headers: h })
  for (let i = 0; i < 40 && down.json().status === 'mounted'; i++) {
    await new Promise(resolve => setTimeout(resolve, 250))
    down = await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${a.json().id as string}`, headers: h })
  }
  t.equal(down.json().status, 'degraded', 'the daemon is alive but the remote fails')
  t.match(down.json().lastError, /listing the remote failed|connection refused/i, 'lastError says why')
  t.notOk(String(down.json().lastError).includes(dav.pass), 'without the password')
  const downRec = await reconcile(t, e)
  t.ok(downRec.some(m => m.action === 'none' && m.status === 'degraded'), 'reconciliation leaves a degraded mount in place (remounting cannot fix the remote)')
  const back = await startWebdavServer({ port, dir: davDir, user: dav.user, pass: dav.pass })
  t.teardown(back.stop)
  // The remote counts as back once a fresh probe answers.
  let status = ''
  for (let i = 0; i < 40 && status !== 'mounted'; i++) {
    await new Promise(resolve => setTimeout(resolve, 250))
    status = (await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${a.json().id as string}`, headers: h })).json().status
  }
  t.equal(status, 'mounted', 'mounted again once the remote answers')
  await agree(t, e, 'after the backend came back', probe)
})

t.test('the control plane killed at each step of add, remove and rotate: reconciliation makes registry and VM agree', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  await mkdir(path.join(dav.dir, 'one'))
  await writeFile(path.join(dav.dir, 'one', 'f.txt'), 'one\n')
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const { client, target } = agentClient(e)
  const creds = { url: dav.url, user: dav.user, pass: dav.pass }
  const add = async (name: string): Promise<string> => {
    const res = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: path.join(e.root, name), remote: 'dav:one', backend: 'webdav', creds } })
    t.equal(res.statusCode, 201, `${name}: ${res.body.slice(0, 200)}`)
    return res.json().id
  }
  const file = (name: string): string => path.join(e.root, name, 'f.txt')

  // add, killed after the registry reserved the path and before the agent was called
  const a1 = await add('add-before-agent')
  await client.remove(target, a1, { force: true })
  await e.store.updateMount('e2e', a1, { status: 'pending' })
  // add, killed after the agent mounted and before the registry recorded it
  const a2 = await add('add-before-record')
  await e.store.updateMount('e2e', a2, { status: 'pending' })
  // a live mount whose record never made it (or was lost): an orphan
  const a3 = await add('orphan')
  await e.store.deleteMount('e2e', a3)
  // remove, killed after marking the entry and before the agent unmounted
  const r1 = await add('remove-before-agent')
  await e.store.updateMount('e2e', r1, { status: 'removing' })
  // remove, killed after the agent unmounted and before the entry was deleted
  const r2 = await add('remove-before-delete')
  await client.remove(target, r2)
  await e.store.updateMount('e2e', r2, { status: 'removing' })
  // rotate, killed after the agent swapped to new credentials and before the registry stored them
  const o1 = await add('rotate-before-record')
  const rotated = await e.store.getMount('e2e', o1)
  const stored = e.app.mounts.openConfig(rotated!)
  await client.apply(target, o1, { path: rotated!.path, config: stored.config.replace(/^url = (.*)$/m, 'url = $1\nvendor = other'), section: stored.section, root: stored.root, readWrite: false, mountOptions: [], redact: stored.redact })

  const before = (await client.list(target)).map(m => m.mountId).sort()
  t.same(before, [a2, a3, r1, o1].sort(), 'the VM holds what the crashes left')
  const report = await reconcile(t, e)
  const action = (id: string): string | undefined => report.find(m => m.mountId === id)?.action
  t.equal(action(a1), 'add_completed', 'a pending add that never reached the VM is completed from the stored config')
  t.equal(action(a2), 'add_completed', 'a pending add that is live in the VM is recorded')
  t.equal(action(r1), 'remove_completed', 'a remove cut short before the agent is finished')
  t.equal(action(r2), 'remove_completed', 'a remove cut short after the agent is finished')
  t.equal(action(o1), 'remounted', 'the VM is put back on the config the registry holds')
  t.equal((await client.get(target, o1))?.configHash, configFingerprint(applyRequest(rotated!, stored)), 'same config on both sides')
  t.equal(await e.store.getMount('e2e', a3), undefined)
  await agree(t, e, 'after reconciliation', { [file('add-before-agent')]: 'one\n', [file('add-before-record')]: 'one\n', [file('rotate-before-record')]: 'one\n' })
  t.same((await fuseMounts(e.root)).filter(m => /orphan|remove-before/.test(m.mountPoint)), [], 'the orphan and both removed mounts are gone from the VM')
  const again = await reconcile(t, e)
  t.same([...new Set(again.map(m => m.action))], ['none'], 'a second round has nothing to do')
})
