import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readMountinfo } from '../../src/agent/mountinfo.ts'
import { startWebdavServer, type WebdavServer } from '../helpers/servers.ts'
import { runAs } from '../helpers/sandbox-user.ts'
import { davRequest, leftovers, startTestAgent, type TestAgent } from './fixture.ts'

// Replacing a mount's configuration and removing a busy one, against a real WebDAV server.

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

t.test('busy mount: MOUNT_BUSY naming the problem, then force detaches it', async t => {
  const path = join(agent.base, 'busy')
  t.equal((await agent.put('busy1', davRequest(dav, path, { readWrite: true }))).statusCode, 201)
  const sleeper = spawn('runuser', ['-u', 'sandbox', '--', 'sleep', '60'], { cwd: path, stdio: 'ignore' })
  t.teardown(() => { sleeper.kill('SIGKILL') })
  await new Promise(resolve => setTimeout(resolve, 300))
  const res = await agent.del('busy1')
  t.equal(res.statusCode, 409)
  t.equal(res.json().error.code, 'MOUNT_BUSY')
  t.match(res.json().error.message, /busy.*force=true/)
  t.equal((await agent.get('/v1/mounts/busy1')).json().status, 'mounted', 'still mounted and healthy')
  const forced = await agent.del('busy1', true)
  t.equal(forced.statusCode, 204, forced.body)
  t.notOk((await readMountinfo()).some(e => e.mountPoint === path), 'detached')
  t.equal((await agent.get('/v1/mounts/busy1')).statusCode, 404)
})

t.test('apply is idempotent; a new config replaces; a failing new config keeps the old mount', async t => {
  const path = join(agent.base, 'rep')
  const first = await agent.put('rep1', davRequest(dav, path, { root: 'docs' }))
  t.equal(first.statusCode, 201)
  const req = davRequest(dav, path, { root: 'docs' })
  const again = await agent.put('rep1', req)
  // a re-rendered config (fresh obscure IV) is a different config: replaced, still fine
  t.equal(again.statusCode, 200)
  t.equal(again.json().outcome, 'replaced')
  const same = await agent.put('rep1', req)
  t.equal(same.statusCode, 200)
  t.equal(same.json().outcome, 'unchanged')
  t.equal(same.json().configHash, again.json().configHash)

  const broken = await agent.put('rep1', davRequest(dav, path, { root: 'docs', pass: 'wrong-password-abc' }))
  t.equal(broken.json().error.code, 'PREFLIGHT_FAILED')
  const after = await agent.get('/v1/mounts/rep1')
  t.match(after.json(), { status: 'mounted', configHash: same.json().configHash }, 'old mount untouched')

  const moved = join(agent.base, 'rep-moved')
  const move = await agent.put('rep1', { ...req, path: moved, readWrite: true })
  t.equal(move.statusCode, 200, move.body)
  t.match(move.json(), { path: moved, readWrite: true, outcome: 'replaced' })
  t.notOk((await readMountinfo()).some(e => e.mountPoint === path), 'old path unmounted')
  t.notOk(await stat(path).then(() => true, () => false), 'old created dir removed')
  t.same((await runAs('sandbox', ['ls', moved])).stdout.trim(), 'readme.txt')
  t.equal((await agent.del('rep1')).statusCode, 204)
  t.same(await leftovers(agent, 'rep1', moved), [])
})

t.test('two mounts racing for one path: one wins, the other is refused', async t => {
  const path = join(agent.base, 'race')
  const [a, b] = await Promise.all([agent.put('ra', davRequest(dav, path)), agent.put('rb', davRequest(dav, path))])
  t.same([a.statusCode, b.statusCode].sort(), [201, 409])
  const loser = a.statusCode === 409 ? a : b
  t.equal(loser.json().error.code, 'MOUNT_POINT_REFUSED')
  t.equal((await agent.get('/v1/mounts')).json().mounts.length, 1)
})
