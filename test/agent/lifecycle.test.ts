import t from 'tap'
import { chown, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readMountinfo } from '../../src/agent/mountinfo.ts'
import { startWebdavServer, type WebdavServer } from '../helpers/servers.ts'
import { runAs } from '../helpers/sandbox-user.ts'
import { davRequest, leftovers, startTestAgent, type TestAgent } from './fixture.ts'

// The mount lifecycle against a real WebDAV server (the quickest real backend here): apply,
// health, read-only, flush on remove, refusals, busy mounts, and nothing left behind.

const PASS = 'dav-secret-' + Math.random().toString(36).slice(2, 12)

let dav: WebdavServer
let agent: TestAgent

t.before(async () => {
  dav = await startWebdavServer({ user: 'alice', pass: PASS })
  await mkdir(join(dav.dir, 'docs'))
  await writeFile(join(dav.dir, 'docs', 'readme.txt'), 'read me')
})
t.teardown(async () => { await dav.stop() })

t.beforeEach(async t => {
  agent = await startTestAgent(t)
})

t.test('read-only mount: the sandbox user lists and reads, writes fail with EROFS, config stays private', async t => {
  const path = join(agent.base, 'home', 'data')
  const res = await agent.put('ro1', davRequest(dav, path, { root: 'docs' }))
  t.equal(res.statusCode, 201, res.body)
  const body = res.json()
  t.match(body, { mountId: 'ro1', path, readWrite: false, status: 'mounted', outcome: 'created' })
  t.match(body.configHash, /^[0-9a-f]{64}$/)

  const entry = (await readMountinfo()).find(e => e.mountPoint === path)
  t.equal(entry?.fsType, 'fuse.rclone')
  t.equal((await stat(path)).uid, agent.user.uid, 'files belong to the sandbox user')

  const ls = await runAs('sandbox', ['ls', path])
  t.equal(ls.code, 0, ls.stderr)
  t.equal(ls.stdout.trim(), 'readme.txt')
  const cat = await runAs('sandbox', ['cat', join(path, 'readme.txt')])
  t.equal(cat.stdout, 'read me')

  const write = await runAs('sandbox', ['sh', '-c', `echo x > ${path}/new.txt`])
  t.not(write.code, 0)
  t.match(write.stderr, /Read-only file system/)
  await t.rejects(writeFile(join(path, 'root.txt'), 'x'), { code: 'EROFS' }, 'root cannot write either')

  const configFile = join(agent.config.configDir, 'ro1.conf')
  t.equal((await stat(agent.config.configDir)).mode & 0o777, 0o700)
  t.equal((await stat(configFile)).mode & 0o777, 0o600)
  t.equal((await stat(join(agent.config.stateDir, 'mounts', 'ro1.json'))).mode & 0o777, 0o600)
  const denied = await runAs('sandbox', ['cat', configFile])
  t.not(denied.code, 0)
  t.match(denied.stderr, /Permission denied/)
  const record = await readFile(join(agent.config.stateDir, 'mounts', 'ro1.json'), 'utf8')
  t.notOk(record.includes(PASS) || record.includes('pass'), 'the record holds no credentials')

  const got = await agent.get('/v1/mounts/ro1')
  t.equal(got.statusCode, 200)
  t.match(got.json(), { mountId: 'ro1', status: 'mounted', configHash: body.configHash })
  const list = await agent.get('/v1/mounts')
  t.same(list.json().mounts.map((m: { mountId: string }) => m.mountId), ['ro1'])

  const del = await agent.del('ro1')
  t.equal(del.statusCode, 204)
  t.same(await leftovers(agent, 'ro1', path), [], 'nothing left: no mount, config, record, cache or created dir')
  t.notOk(await lstat(join(agent.base, 'home')).then(() => true, () => false), 'created parent dirs are gone too')
  t.equal((await agent.del('ro1')).statusCode, 204, 'removing twice is fine')
  t.equal((await agent.get('/v1/mounts/ro1')).json().error.code, 'NOT_FOUND')
})

t.test('read-write: a file written just before remove reaches the server', async t => {
  const path = join(agent.base, 'rw')
  const res = await agent.put('rw1', davRequest(dav, path, { readWrite: true, root: 'rw-area' }))
  t.equal(res.statusCode, 422, 'a missing root is refused by the preflight')
  t.equal(res.json().error.code, 'PREFLIGHT_FAILED')
  await mkdir(join(dav.dir, 'rw-area'))
  const ok = await agent.put('rw1', davRequest(dav, path, { readWrite: true, root: 'rw-area', mountOptions: ['--vfs-write-back', '3s'] }))
  t.equal(ok.statusCode, 201, ok.body)
  const w = await runAs('sandbox', ['sh', '-c', `printf 'written late' > ${path}/late.txt`])
  t.equal(w.code, 0, w.stderr)
  t.notOk(await stat(join(dav.dir, 'rw-area', 'late.txt')).then(() => true, () => false), 'still only in the write-back cache')
  const del = await agent.del('rw1')
  t.equal(del.statusCode, 204, del.body)
  t.equal(await readFile(join(dav.dir, 'rw-area', 'late.txt'), 'utf8'), 'written late', 'remove flushed the write first')
  t.same(await leftovers(agent, 'rw1', path), [])
})

t.test('wrong password: PREFLIGHT_FAILED, scrubbed, nothing left behind', async t => {
  const path = join(agent.base, 'bad')
  const req = davRequest(dav, path, { pass: 'not-the-password-xyz' })
  const res = await agent.put('bad1', req)
  t.equal(res.statusCode, 422)
  const err = res.json().error
  t.equal(err.code, 'PREFLIGHT_FAILED')
  t.match(err.message, /401|Unauthorized/)
  for (const secret of req.redact) t.notOk(res.body.includes(secret), 'no secret in the answer')
  t.same(await leftovers(agent, 'bad1', path), [])
  t.notOk(agent.logs().includes('not-the-password-xyz') || agent.logs().includes(req.redact[1]), 'no secret in the logs')

  const unreachable = davRequest(dav, path)
  unreachable.config = unreachable.config.replace(dav.url, 'http://127.0.0.1:1')
  const res2 = await agent.put('bad2', unreachable)
  t.equal(res2.json().error.code, 'PREFLIGHT_FAILED')
  t.match(res2.json().error.message, /connection refused/)
  t.same(await leftovers(agent, 'bad2', path), [])
})

t.test('mount points that are refused', async t => {
  const nonEmpty = join(agent.base, 'full')
  await mkdir(nonEmpty)
  await chown(nonEmpty, agent.user.uid, agent.user.gid)
  await writeFile(join(nonEmpty, 'x'), 'x')
  const file = join(agent.base, 'file')
  await writeFile(file, 'x')
  const rootOwned = join(agent.base, 'rootowned')
  await mkdir(rootOwned)
  const target = join(agent.base, 'target')
  await mkdir(target)
  await chown(target, agent.user.uid, agent.user.gid)
  const link = join(agent.base, 'link')
  await symlink(target, link)
  const cases: Array<[string, RegExp]> = [
    [nonEmpty, /not empty/],
    [file, /not a directory/],
    [rootOwned, /not owned by the sandbox user/],
    [link, /symbolic link/],
    [join(link, 'below'), /symbolic link/],
    [join(file, 'below'), /not a directory/]
  ]
  for (const [p, why] of cases) {
    const res = await agent.put('refused', davRequest(dav, p))
    t.equal(res.statusCode, 409, p)
    t.equal(res.json().error.code, 'MOUNT_POINT_REFUSED', p)
    t.match(res.json().error.message, why, p)
  }
  t.same(await readdir(agent.config.configDir).then(n => n.filter(x => x.startsWith('refused'))), [])
  t.notOk(await stat(join(target, 'below')).then(() => true, () => false), 'nothing created through the symlink')

  const taken = join(agent.base, 'taken')
  t.equal((await agent.put('first', davRequest(dav, taken))).statusCode, 201)
  const second = await agent.put('second', davRequest(dav, taken))
  t.equal(second.json().error.code, 'MOUNT_POINT_REFUSED')
  const inside = await agent.put('third', davRequest(dav, join(taken, 'docs')))
  t.equal(inside.json().error.code, 'MOUNT_POINT_REFUSED')
  t.equal((await agent.get('/v1/mounts/first')).json().status, 'mounted', 'the first mount is untouched')

  const bad = await agent.put('badpath', davRequest(dav, 'relative/path'))
  t.equal(bad.json().error.code, 'BAD_REQUEST')
})

t.test('no secret on any command line or in the logs', async t => {
  const path = join(agent.base, 'ps')
  const req = davRequest(dav, path, { readWrite: true })
  t.equal((await agent.put('ps1', req)).statusCode, 201)
  await agent.get('/v1/mounts')
  const pids = (await readdir('/proc')).filter(n => /^\d+$/.test(n))
  let seen = 0
  const leaking: string[] = []
  for (const pid of pids) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes('rclone\0rcd')) seen++
    if ([...req.redact, agent.config.token].some(secret => cmd.includes(secret))) leaking.push(pid)
  }
  t.ok(seen > 0, 'the rclone daemon was among the processes')
  t.same(leaking, [], 'no command line holds a secret')
  const logs = agent.logs()
  t.ok(logs.includes('"mountId":"ps1"'), 'log lines carry the mountId')
  for (const secret of [...req.redact, agent.config.token]) t.notOk(logs.includes(secret), 'no secret in the logs')
})
