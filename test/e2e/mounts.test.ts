import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { buildE2E } from '../helpers/e2e.ts'
import { TENANT_A } from '../helpers/app.ts'
import { startWebdavServer, startSftpServer, startS3Server } from '../helpers/servers.ts'
import { runAs } from '../helpers/sandbox-user.ts'

// Issue: the control plane with the real agent, real rclone and real servers on loopback.

const mounted = async (p: string): Promise<boolean> =>
  (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').some(l => l.split(' ')[4] === p && l.includes(' fuse.rclone '))

t.test('webdav: 201 only once live, files visible, read-only enforced, remove leaves nothing', async t => {
  const dav = await startWebdavServer({ user: 'alice', pass: 'canary-dav-pass-e2e' })
  t.teardown(dav.stop)
  await writeFile(path.join(dav.dir, 'hello.txt'), 'hello from webdav\n')
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'mnt', 'dav')
  const res = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: 'alice', pass: 'canary-dav-pass-e2e', vendor: 'other' } } })
  t.equal(res.statusCode, 201, res.body)
  t.equal(res.json().status, 'mounted')
  t.ok(await mounted(mnt), 'mountinfo shows the FUSE mount as soon as POST answers')
  t.equal(await readFile(path.join(mnt, 'hello.txt'), 'utf8'), 'hello from webdav\n')
  t.throws(() => execFileSync('sh', ['-c', `echo x > '${mnt}/new.txt'`], { stdio: 'pipe' }), 'a write on a read-only mount fails')
  t.notOk(existsSync(path.join(dav.dir, 'new.txt')))

  const asUser = await runAs('sandbox', ['cat', path.join(mnt, 'hello.txt')])
  t.equal(asUser.stdout, 'hello from webdav\n', 'the sandbox user can read through the mount')
  const configs = await readdir(e.agentConfig.configDir)
  t.ok(configs.length > 0, 'a config file exists while mounted')
  for (const f of configs) {
    const denied = await runAs('sandbox', ['cat', path.join(e.agentConfig.configDir, f)])
    t.not(denied.code, 0, `the sandbox user cannot read ${f}`)
  }
  const ps = execFileSync('ps', ['-eo', 'args']).toString()
  t.notOk(ps.includes('canary-dav-pass-e2e'), 'no secret on any command line')

  const get = await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${res.json().id as string}`, headers: h })
  t.equal(get.json().status, 'mounted')

  const del = await e.app.inject({ method: 'DELETE', url: `/sandboxes/e2e/mounts?path=${encodeURIComponent(mnt)}`, headers: h })
  t.equal(del.statusCode, 204, del.body)
  t.notOk(await mounted(mnt), 'unmounted')
  t.notOk(existsSync(mnt), 'the directory the agent created is gone')
  t.same((await readdir(e.agentConfig.configDir)).filter(f => f.startsWith('mnt_')), [], 'no mount config left')
  t.same(await e.store.listMounts('e2e'), [])
  const all = [...e.logs, ...e.agentLogs].join('\n')
  t.notOk(all.includes('canary-dav-pass-e2e'), 'no secret in any log')
})

t.test('read-write: a file written just before remove is in the backend afterwards', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  await mkdir(path.join(dav.dir, 'sub'))
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'rw')
  const res = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'dav:sub', backend: 'webdav', readWrite: true, creds: { url: dav.url, user: dav.user, pass: dav.pass } } })
  t.equal(res.statusCode, 201, res.body)
  await runAs('sandbox', ['sh', '-c', `mkdir -p '${mnt}' && echo written-by-sandbox > '${mnt}/out.txt'`])
  const del = await e.app.inject({ method: 'DELETE', url: `/sandboxes/e2e/mounts/${res.json().id as string}`, headers: h })
  t.equal(del.statusCode, 204, del.body)
  t.equal(await readFile(path.join(dav.dir, 'sub', 'out.txt'), 'utf8'), 'written-by-sandbox\n', 'flushed before unmount')
})

t.test('wrong credentials: 422 with rclone\'s reason, no registry entry, nothing in the VM', async t => {
  const sftp = await startSftpServer({ password: 'right-password-1' })
  t.teardown(sftp.stop)
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'bad')
  const res = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'box:', backend: 'sftp', creds: { host: sftp.host, port: sftp.port, user: sftp.user, pass: 'canary-wrong-sftp-pass' } } })
  t.equal(res.statusCode, 422, res.body)
  t.equal(res.json().error.code, 'REMOTE_PREFLIGHT_FAILED')
  t.notOk(res.body.includes('canary-wrong-sftp-pass'))
  t.same(await e.store.listMounts('e2e'), [], 'no registry entry')
  t.notOk(existsSync(mnt), 'no directory left')
  t.notOk(await mounted(mnt))
  t.same((await readdir(e.agentConfig.configDir).catch(() => [])).filter(f => f.startsWith('mnt_')), [])

  const good = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'box:', backend: 'sftp', creds: { host: sftp.host, port: sftp.port, user: sftp.user, pass: 'right-password-1' } } })
  t.equal(good.statusCode, 201, good.body)
})

t.test('s3: mounts a bucket; a missing bucket is a 422', async t => {
  const s3 = await startS3Server({ buckets: ['data-bucket'] })
  t.teardown(s3.stop)
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const creds = { provider: 'Other', access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, endpoint: s3.endpoint, force_path_style: true }
  const ok = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: path.join(e.root, 's3'), remote: 's3:data-bucket', backend: 's3', readWrite: true, creds } })
  t.equal(ok.statusCode, 201, ok.body)
  await writeFile(path.join(e.root, 's3', 'obj.txt'), 'to s3\n')
  t.equal((await e.app.inject({ method: 'DELETE', url: `/sandboxes/e2e/mounts/${ok.json().id as string}`, headers: h })).statusCode, 204)
  t.equal(String(await s3.readObject('data-bucket', 'obj.txt')), 'to s3\n', 'the write is in the bucket after remove')
  const missing = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: path.join(e.root, 's3b'), remote: 's3:no-such-bucket', backend: 's3', creds } })
  t.equal(missing.statusCode, 422, missing.body)
})

t.test('agent unreachable: add/remove 503 and change nothing; list answers from the registry as unknown', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  const e = await buildE2E(t)
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'm')
  const res = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: mnt, remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: dav.user, pass: dav.pass } } })
  t.equal(res.statusCode, 201)
  await e.stopAgent()
  const add = await e.app.inject({ method: 'POST', url: '/sandboxes/e2e/mounts', headers: h, payload: { path: path.join(e.root, 'm2'), remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: dav.user, pass: dav.pass } } })
  t.equal(add.statusCode, 503)
  t.equal(add.json().error.code, 'AGENT_UNREACHABLE')
  const del = await e.app.inject({ method: 'DELETE', url: `/sandboxes/e2e/mounts/${res.json().id as string}`, headers: h })
  t.equal(del.statusCode, 503)
  const list = await e.app.inject({ method: 'GET', url: '/sandboxes/e2e/mounts?refresh=true', headers: h })
  t.same(list.json().mounts.map((m: { status: string }) => m.status), ['unknown'])
  t.equal((await e.store.listMounts('e2e')).length, 1)
  t.ok(await mounted(mnt), 'the mount itself is untouched')
  await e.restartAgent()
  const back = await e.app.inject({ method: 'GET', url: `/sandboxes/e2e/mounts/${res.json().id as string}`, headers: h })
  t.equal(back.json().status, 'mounted', 'the restarted agent adopted the running daemon')
})
