import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import { buildE2E } from '../helpers/e2e.ts'
import { INTERNAL_TOKEN, TENANT_A } from '../helpers/app.ts'
import { startWebdavServer, startSftpServer } from '../helpers/servers.ts'
import { runAs } from '../helpers/sandbox-user.ts'
import { openStore } from '../../src/mounts/store.ts'

// Issue: hibernate/wake, cold restart, dead daemons, orphans, rotation and destroy with the
// real agent, real rclone and real servers on loopback.

const isMounted = async (p: string): Promise<boolean> =>
  (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some(l => l.split(' ')[4] === p && l.includes(' fuse.rclone '))
const rcdPid = async (stateDir: string): Promise<number> => JSON.parse(await readFile(path.join(stateDir, 'rcd.json'), 'utf8')).pid as number
const internal = { authorization: `Bearer ${INTERNAL_TOKEN}` }

t.test('hibernate and wake keep the mount without a remount; a cold restart brings every mount back', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  await writeFile(path.join(dav.dir, 'kept.txt'), 'kept\n')
  const e = await buildE2E(t, { separateProcess: true })
  const h = e.auth(TENANT_A.key)
  const ro = path.join(e.root, 'ro')
  const rw = path.join(e.root, 'rw')
  const creds = { url: dav.url, user: dav.user, pass: dav.pass }
  const a = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: ro, remote: 'dav:', backend: 'webdav', creds } })
  const b = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: rw, remote: 'dav:', backend: 'webdav', creds, readWrite: true, mountOptions: ['--dir-cache-time', '1s'] } })
  t.equal(a.statusCode, 201, a.body)
  t.equal(b.statusCode, 201, b.body)

  // Hibernate: the orchestrator freezes the VM; here the agent and its rclone daemon stop.
  const pid = await rcdPid(e.agentConfig.stateDir)
  t.equal((await e.app.inject({ method: 'POST', url: '/internal/sandboxes/e2e/events', headers: internal, payload: { type: 'hibernating' } })).statusCode, 204)
  e.agentProcess!.kill('SIGSTOP')
  process.kill(pid, 'SIGSTOP')
  const blocked = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: path.join(e.root, 'x'), remote: 'dav:', backend: 'webdav', creds } })
  t.equal(blocked.statusCode, 409)
  t.equal(blocked.json().error.code, 'SANDBOX_HIBERNATED')
  t.equal((await e.app.inject({ method: 'GET', url: '/sandboxes/e2e/mounts', headers: h })).json().mounts.length, 2, 'list answers from the registry')
  process.kill(pid, 'SIGCONT')
  e.agentProcess!.kill('SIGCONT')
  const woke = await e.app.inject({ method: 'POST', url: '/internal/sandboxes/e2e/events', headers: internal, payload: { type: 'woke' } })
  t.equal(woke.statusCode, 200, woke.body)
  t.same(woke.json().mounts.map((m: { action: string }) => m.action), ['none', 'none'], 'no remount after wake')
  t.equal(await rcdPid(e.agentConfig.stateDir), pid, 'the same daemon serves on')
  t.equal(await readFile(path.join(ro, 'kept.txt'), 'utf8'), 'kept\n')

  // Cold restart: the VM boots afresh: no daemon, no mounts, an empty tmpfs; the agent starts again.
  e.agentProcess!.kill('SIGKILL')
  process.kill(pid, 'SIGKILL')
  for (const p of [ro, rw]) execFileSync('fusermount3', ['-uz', p])
  for (const f of await readdir(e.agentConfig.configDir)) await rm(path.join(e.agentConfig.configDir, f), { force: true })
  t.notOk(await isMounted(ro))
  await e.restartAgent()
  const restarted = await e.app.inject({ method: 'POST', url: '/internal/sandboxes/e2e/events', headers: internal, payload: { type: 'restarted' } })
  t.equal(restarted.statusCode, 200, restarted.body)
  t.same(restarted.json().mounts.map((m: { action: string, status: string }) => [m.action, m.status]), [['remounted', 'mounted'], ['remounted', 'mounted']])
  t.ok(await isMounted(ro) && await isMounted(rw), 'both paths mounted again')
  t.equal(await readFile(path.join(ro, 'kept.txt'), 'utf8'), 'kept\n')
  const roWrite = await runAs('sandbox', ['sh', '-c', `echo no > '${ro}/no.txt'`])
  t.not(roWrite.code, 0, 'the read-only mount is still read-only')
  const rwWrite = await runAs('sandbox', ['sh', '-c', `echo yes > '${rw}/yes.txt'`])
  t.equal(rwWrite.code, 0, 'the read-write mount is still read-write')
})

t.test('a killed daemon is detected and remounted; an orphan mount is removed', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  await writeFile(path.join(dav.dir, 'f.txt'), 'f\n')
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'm')
  const add = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: dav.user, pass: dav.pass } } })
  t.equal(add.statusCode, 201, add.body)
  const id = add.json().id as string
  process.kill(await rcdPid(e.agentConfig.stateDir), 'SIGKILL')
  await new Promise(resolve => setTimeout(resolve, 300))
  const dead = await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${id}`, headers: h })
  t.equal(dead.json().status, 'failed', dead.body)
  t.ok(dead.json().lastError)

  // An orphan: a live mount the registry does not know (e.g. left by a control plane that died).
  const orphanPath = path.join(e.root, 'orphan')
  const orphanCfg = (await e.app.mounts.openConfig((await e.store.getMount('e2e', id))!))
  const put = await fetch(`${e.agentUrl}/v1/mounts/mnt_orphan0001`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${e.agentToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ path: orphanPath, config: orphanCfg.config, section: orphanCfg.section, root: orphanCfg.root, readWrite: false, mountOptions: [], redact: orphanCfg.redact })
  })
  t.ok(put.ok, await put.text())
  t.ok(await isMounted(orphanPath))

  const rec = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts/reconcile', headers: h })
  t.equal(rec.statusCode, 200, rec.body)
  t.match(rec.json(), { agentReachable: true, mounts: [{ mountId: id, found: 'failed', action: 'remounted', status: 'mounted' }], orphansRemoved: [{ mountId: 'mnt_orphan0001', path: orphanPath }] })
  t.equal(await readFile(path.join(mnt, 'f.txt'), 'utf8'), 'f\n', 'the remounted mount serves files')
  t.notOk(await isMounted(orphanPath), 'the orphan is unmounted')
  t.equal((await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${id}`, headers: h })).json().status, 'mounted')
})

t.test('an add cut short by a control-plane crash is finished by reconciliation', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'p')
  const add = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: dav.user, pass: dav.pass } } })
  const id = add.json().id as string
  // The state a SIGKILL between "registry reserved the path" and "agent mounted" leaves.
  await fetch(`${e.agentUrl}/v1/mounts/${id}?force=true`, { method: 'DELETE', headers: { authorization: `Bearer ${e.agentToken}` } })
  await e.store.updateMount('e2e', id, { status: 'pending' })
  t.notOk(await isMounted(mnt))
  const rec = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts/reconcile', headers: h })
  t.match(rec.json().mounts, [{ mountId: id, action: 'add_completed', status: 'mounted' }])
  t.ok(await isMounted(mnt), 'registry and VM agree: mounted')
})

t.test('rotation: bad credentials keep the old mount; good ones swap it with pending writes flushed', async t => {
  const sftp = await startSftpServer()
  t.teardown(sftp.stop)
  const keys = await sftp.generateKeypair()
  await sftp.authorizeKey(keys.publicKey)
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'sftp')
  const base = { host: sftp.host, port: sftp.port, user: sftp.user }
  const add = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'box:', backend: 'sftp', readWrite: true, creds: { ...base, pass: sftp.password } } })
  t.equal(add.statusCode, 201, add.body)
  const id = add.json().id as string

  const bad = await e.app.inject({ method: 'PUT', url: `/sandboxes/e2e/mounts/${id}/credentials`, headers: h, payload: { creds: { ...base, pass: 'canary-wrong-rotation-pass' } } })
  t.equal(bad.statusCode, 422, bad.body)
  t.equal(bad.json().error.code, 'REMOTE_PREFLIGHT_FAILED')
  t.notOk(bad.body.includes('canary-wrong-rotation-pass'))
  await runAs('sandbox', ['sh', '-c', `echo after-bad > '${mnt}/after-bad.txt'`])
  t.equal((await runAs('sandbox', ['cat', `${mnt}/after-bad.txt`])).stdout, 'after-bad\n', 'the old mount still works')

  await runAs('sandbox', ['sh', '-c', `echo just-before > '${mnt}/before-rotation.txt'`])
  const good = await e.app.inject({ method: 'PUT', url: `/sandboxes/e2e/mounts/${id}/credentials`, headers: h, payload: { creds: { ...base, key_pem: keys.keyPem } } })
  t.equal(good.statusCode, 200, good.body)
  t.equal(await readFile(path.join(sftp.root, 'before-rotation.txt'), 'utf8'), 'just-before\n', 'the write made just before rotation is in the backend')
  t.equal(await readFile(path.join(sftp.root, 'after-bad.txt'), 'utf8'), 'after-bad\n')
  t.match(e.app.mounts.openConfig((await e.store.getMount('e2e', id))!).config, /key_pem = /, 'the stored config uses the new credentials')
  t.equal((await runAs('sandbox', ['ls', mnt])).code, 0, 'the mount works on the new credentials')
  t.equal((await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${id}`, headers: h })).json().status, 'mounted')
})

t.test('stale credentials surface as degraded; rotation to the new ones heals the mount', async t => {
  const dav = await startWebdavServer({ user: 'u', pass: 'first-pass-0001' })
  const port = dav.port
  const dir = await mkdir(path.join(tmpdir(), `dav-${process.pid}-${Date.now()}`), { recursive: true }) as string
  await writeFile(path.join(dir, 'a.txt'), 'a\n')
  await dav.stop()
  let server = await startWebdavServer({ user: 'u', pass: 'first-pass-0001', port, dir })
  t.teardown(async () => { await server.stop(); await rm(dir, { recursive: true, force: true }) })
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'd')
  const add = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'dav:', backend: 'webdav', creds: { url: server.url, user: 'u', pass: 'first-pass-0001' } } })
  t.equal(add.statusCode, 201, add.body)
  const id = add.json().id as string
  // The storage side rotates the password: the live mount's credentials go stale.
  await server.stop()
  server = await startWebdavServer({ user: 'u', pass: 'second-pass-0002', port, dir })
  let status = ''
  let lastError = ''
  for (let i = 0; i < 40 && status !== 'degraded'; i++) {
    const got = (await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${id}`, headers: h })).json()
    status = got.status
    lastError = got.lastError ?? ''
    if (status !== 'degraded') await new Promise(resolve => setTimeout(resolve, 500))
  }
  t.equal(status, 'degraded')
  t.match(lastError, /401|nauthori|denied|forbidden/i)
  t.notOk(lastError.includes('first-pass-0001'))
  const rot = await e.app.inject({ method: 'PUT', url: `/sandboxes/e2e/mounts/${id}/credentials`, headers: h, payload: { creds: { url: server.url, user: 'u', pass: 'second-pass-0002' } } })
  t.equal(rot.statusCode, 200, rot.body)
  t.equal((await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${id}`, headers: h })).json().status, 'mounted')
  t.equal(await readFile(path.join(mnt, 'a.txt'), 'utf8'), 'a\n')
})

t.test('destroy removes the sandbox\'s entries and sealed secrets from the database file', async t => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sandbox-mounts-destroy-'))
  t.teardown(() => { rmSync(dataDir, { recursive: true, force: true }) })
  const store = await openStore({ dataDir })
  t.teardown(async () => { await store.close() })
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  const e = await buildE2E(t, { store })
  const h = e.auth(TENANT_A.key)
  const add = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: path.join(e.root, 'z'), remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: dav.user, pass: dav.pass } } })
  t.equal(add.statusCode, 201)
  const sealed = (await store.getMount('e2e', add.json().id))!.configSecret
  const db = new Database(path.join(dataDir, 'registry.db'))
  t.teardown(() => db.close())
  const count = (sql: string): number => (db.prepare(sql).get('e2e') as { n: number }).n
  t.equal(count('SELECT count(*) AS n FROM mounts WHERE sandbox_id = ?'), 1)
  t.equal(count('SELECT count(*) AS n FROM sandboxes WHERE id = ?'), 1)
  await e.stopAgent()
  const res = await e.app.inject({ method: 'POST', url: '/internal/sandboxes/e2e/events', headers: internal, payload: { type: 'destroyed' } })
  t.equal(res.statusCode, 204)
  t.equal(count('SELECT count(*) AS n FROM mounts WHERE sandbox_id = ?'), 0, 'no mount rows')
  t.equal(count('SELECT count(*) AS n FROM sandboxes WHERE id = ?'), 0, 'no sandbox row (its agent token is gone)')
  db.pragma('wal_checkpoint(TRUNCATE)')
  const bytes = await readFile(path.join(dataDir, 'registry.db'))
  t.notOk(bytes.includes(sealed.split('.')[4]), 'the sealed config is not in the file')
  t.notOk(existsSync(path.join(dataDir, 'registry.db-wal')) && (await readFile(path.join(dataDir, 'registry.db-wal'))).includes(sealed.split('.')[4]))
})
