import t from 'tap'
import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startAgent } from '../../src/agent/main.ts'
import { loadAgentConfig } from '../../src/agent/config.ts'
import { readMountinfo } from '../../src/agent/mountinfo.ts'
import type { AgentApplyRequest } from '../../src/schemas/agent.ts'
import { iniSection, makeBase, startTestAgent, TOKEN } from './fixture.ts'
import { ensureSandboxUser } from '../helpers/sandbox-user.ts'

// The agent's HTTP contract: bearer auth on everything, capabilities, request validation and
// the runtime check. Mount behaviour itself is in lifecycle/backends/rcd tests.

const exec = promisify(execFile)

function localRequest (path: string): AgentApplyRequest {
  return { path, config: iniSection('r', { type: 'webdav', url: 'http://127.0.0.1:1', vendor: 'other' }), section: 'r', root: '', readWrite: false, mountOptions: [], redact: [] }
}

t.test('every route needs the bearer token; without it 401 and nothing else', async t => {
  const agent = await startTestAgent(t)
  const path = join(agent.base, 'never')
  const routes: Array<{ method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: AgentApplyRequest }> = [
    { method: 'GET', url: '/healthz' },
    { method: 'GET', url: '/v1/capabilities' },
    { method: 'GET', url: '/v1/mounts' },
    { method: 'GET', url: '/v1/mounts/x' },
    { method: 'PUT', url: '/v1/mounts/x', payload: localRequest(path) },
    { method: 'DELETE', url: '/v1/mounts/x' },
    { method: 'GET', url: '/no/such/route' }
  ]
  for (const headers of [{}, { authorization: 'Bearer wrong-token-000000000000' }, { authorization: TOKEN }, { authorization: `Bearer ${TOKEN}x` }]) {
    for (const r of routes) {
      const res = await agent.app.inject({ ...r, headers })
      t.equal(res.statusCode, 401, `${r.method} ${r.url}`)
      t.same(res.json(), { error: { code: 'UNAUTHORIZED', message: 'missing or wrong bearer token' } })
    }
  }
  t.same(await readdir(agent.config.configDir).then(n => n.filter(x => x !== 'rcd.conf')), [], 'no config written')
  t.notOk((await readMountinfo()).some(e => e.mountPoint === path))
  t.notOk(agent.logs().includes(TOKEN), 'the token is never logged')

  t.equal((await agent.get('/healthz')).statusCode, 200)
  t.equal((await agent.get('/no/such/route')).json().error.code, 'NOT_FOUND')
})

t.test('capabilities report the real rclone and fusermount3', async t => {
  const agent = await startTestAgent(t)
  const res = await agent.get('/v1/capabilities')
  t.equal(res.statusCode, 200)
  const { stdout } = await exec('rclone', ['version'], { env: { PATH: '/usr/bin:/bin', HOME: agent.base } })
  const version = /^rclone\s+(\S+)/.exec(stdout)?.[1]
  t.same(res.json(), { rcloneVersion: version, fusermount3: true, ready: true, processModel: 'rcd' })
})

t.test('missing rclone or fusermount3: RUNTIME_MISSING, capabilities say so, nothing written', async t => {
  const envs: Array<Record<string, string>> = [{ RCLONE_BIN: '/nonexistent/rclone' }, { FUSERMOUNT_BIN: 'no-such-fusermount3' }]
  for (const env of envs) {
    const agent = await startTestAgent(t, env)
    const path = join(agent.base, 'm')
    const res = await agent.put('m1', localRequest(path))
    t.equal(res.statusCode, 424)
    t.equal(res.json().error.code, 'RUNTIME_MISSING')
    t.ok(res.json().error.message.includes('sandbox image is missing rclone and/or fusermount3'), res.json().error.message)
    const caps = (await agent.get('/v1/capabilities')).json()
    t.equal(caps.ready, false)
    if (env.RCLONE_BIN !== undefined) t.equal(caps.rcloneVersion, null)
    else t.equal(caps.fusermount3, false)
    t.same(await readdir(agent.config.configDir).catch(() => []).then(n => n.filter(x => x.startsWith('m1'))), [])
    t.equal((await agent.get('/healthz')).json().rcd, 'stopped', 'no daemon is started without a full runtime')
  }
})

t.test('bad requests are refused before anything happens', async t => {
  const agent = await startTestAgent(t)
  const path = join(agent.base, 'bad')
  const good = localRequest(path)
  const cases: Array<[string, unknown, RegExp]> = [
    ['missing field', { ...good, section: undefined }, /section/],
    ['unknown field', { ...good, extra: 1 }, /additional/],
    ['wrong type', { ...good, readWrite: 'yes' }, /readWrite/],
    ['relative path', { ...good, path: 'rel/path' }, /absolute/],
    ['unnormalised path', { ...good, path: path + '/../x' }, /normalised/],
    ['root path', { ...good, path: '/' }, /other than \//],
    ['no such section', { ...good, section: 'other' }, /no section \[other\]/],
    ['no type', { ...good, config: '[r]\nurl = http://127.0.0.1:1\n' }, /no type/],
    ['local backend', { ...good, config: '[r]\ntype = local\n' }, /not mounted by the agent/],
    ['command option', { ...good, config: iniSection('r', { type: 'webdav', url: 'http://127.0.0.1:1', bearer_token_command: 'id' }) }, /bearer_token_command/],
    ['special key', { ...good, config: iniSection('r', { type: 'webdav', _root: '/etc' }) }, /not allowed/],
    ['unparsable config', { ...good, config: '[r]\ntype = webdav\ngarbage line\n' }, /line 3/],
    ['refused mount option', { ...good, mountOptions: ['--allow-root'] }, /not an allowed mount option/],
    ['bad mount option value', { ...good, mountOptions: ['--dir-cache-time', 'soon'] }, /duration/]
  ]
  for (const [name, body, why] of cases) {
    const res = await agent.app.inject({ method: 'PUT', url: '/v1/mounts/m1', headers: { authorization: `Bearer ${TOKEN}` }, payload: body as object })
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().error.code, 'BAD_REQUEST', name)
    t.match(res.json().error.message, why, name)
  }
  const badId = await agent.app.inject({ method: 'PUT', url: '/v1/mounts/a.b', headers: { authorization: `Bearer ${TOKEN}` }, payload: good })
  t.equal(badId.json().error.code, 'BAD_REQUEST', 'mount ids are [A-Za-z0-9_-]')
  t.same(await readdir(agent.config.configDir).then(n => n.filter(x => x !== 'rcd.conf')), [])
  t.equal((await agent.get('/v1/mounts/m1')).statusCode, 404)
  t.equal((await agent.del('m1')).statusCode, 204, 'removing an unknown mount is fine')
})

t.test('startAgent listens and answers over real HTTP', async t => {
  await ensureSandboxUser()
  const base = await makeBase(t)
  const config = loadAgentConfig({ AGENT_TOKEN: TOKEN, AGENT_PORT: '0', AGENT_CONFIG_DIR: join(base, 'c'), AGENT_STATE_DIR: join(base, 's'), AGENT_LOG_LEVEL: 'silent', PATH: process.env.PATH })
  const agent = await startAgent(config, { stopDaemonOnClose: true })
  t.teardown(() => agent.close())
  t.match(agent.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  const res = await fetch(`${agent.url}/v1/mounts`, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.status, 200)
  t.same(await res.json(), { mounts: [] })
  t.equal((await fetch(`${agent.url}/v1/mounts`)).status, 401)
})
