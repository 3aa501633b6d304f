import t from 'tap'
import { buildTestApp, INTERNAL_TOKEN, TENANT_A, TENANT_B } from '../helpers/app.ts'

const S3_CREDS = { provider: 'Other', access_key_id: 'AKIACANARY0001', secret_access_key: 'canary-secret-s3-0001', endpoint: 'http://127.0.0.1:9', force_path_style: true }
const s3Body = (path = '/mnt/data', extra: Record<string, unknown> = {}) => ({ path, remote: 's3:bucket/datasets', backend: 's3', creds: S3_CREDS, ...extra })

t.test('add, get, list, idempotent re-add, conflict, remove by path and by id', async t => {
  const { app, agent, auth, registerSandbox, store } = await buildTestApp(t)
  await registerSandbox('sb1')
  const h = auth(TENANT_A.key)

  const add = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  t.equal(add.statusCode, 201, add.body)
  const mount = add.json()
  t.match(mount, { sandboxId: 'sb1', path: '/mnt/data', remote: 's3:bucket/datasets', backend: 's3', readWrite: false, status: 'mounted', mountOptions: [] })
  t.notOk(JSON.stringify(mount).includes('canary'), 'no credential in the mount object')
  t.equal(agent.mounts.size, 1)
  const applied = [...agent.mounts.values()][0].request
  t.equal(applied.section, 's3')
  t.equal(applied.root, 'bucket/datasets')
  t.equal(applied.readWrite, false)
  t.match(applied.config, /secret_access_key = canary-secret-s3-0001/)

  const again = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  t.equal(again.statusCode, 200, 'same spec again answers the existing mount')
  t.equal(again.json().id, mount.id)

  const other = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body('/mnt/data', { readWrite: true }) })
  t.equal(other.statusCode, 409)
  t.equal(other.json().error.code, 'MOUNT_PATH_CONFLICT')
  const nested = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body('/mnt/data/inner') })
  t.equal(nested.statusCode, 409)
  t.match(nested.json().error.message, /inside or around/)

  const second = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body('/mnt/other', { readWrite: true, mountOptions: ['--dir-cache-time', '1m'] }) })
  t.equal(second.statusCode, 201, second.body)
  t.same(second.json().mountOptions, ['--dir-cache-time', '1m'])

  const list = await app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: h })
  t.equal(list.statusCode, 200)
  t.same(list.json().mounts.map((m: { path: string }) => m.path), ['/mnt/data', '/mnt/other'])

  const get = await app.inject({ method: 'GET', url: `/sandboxes/sb1/mounts/${mount.id as string}`, headers: h })
  t.equal(get.statusCode, 200)
  t.equal(get.json().status, 'mounted')
  t.ok(get.json().lastCheckedAt)

  agent.setStatus(mount.id, 'degraded', 'AccessDenied: ***')
  const degraded = await app.inject({ method: 'GET', url: `/sandboxes/sb1/mounts/${mount.id as string}`, headers: h })
  t.equal(degraded.json().status, 'degraded')
  t.equal(degraded.json().lastError, 'AccessDenied: ***')

  const delPath = await app.inject({ method: 'DELETE', url: '/sandboxes/sb1/mounts?path=/mnt/data', headers: h })
  t.equal(delPath.statusCode, 204)
  const delId = await app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${second.json().id as string}`, headers: h })
  t.equal(delId.statusCode, 204)
  t.equal(agent.mounts.size, 0)
  t.same(await store.listMounts('sb1'), [])
  const gone = await app.inject({ method: 'DELETE', url: '/sandboxes/sb1/mounts?path=/mnt/data', headers: h })
  t.equal(gone.statusCode, 404)
  t.equal(gone.json().error.code, 'MOUNT_NOT_FOUND')
})

t.test('tenancy: another tenant gets 404, no key gets 401, internal routes refuse API keys', async t => {
  const { app, auth, registerSandbox } = await buildTestApp(t)
  await registerSandbox('sbA', TENANT_A.tenant)
  const add = await app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: auth(TENANT_A.key), payload: s3Body() })
  t.equal(add.statusCode, 201)
  const id = add.json().id as string
  const b = auth(TENANT_B.key)
  for (const [method, url] of [['GET', '/sandboxes/sbA/mounts'], ['GET', `/sandboxes/sbA/mounts/${id}`], ['DELETE', `/sandboxes/sbA/mounts/${id}`], ['DELETE', '/sandboxes/sbA/mounts?path=/mnt/data']] as const) {
    const res = await app.inject({ method, url, headers: b })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.json().error.code, 'SANDBOX_NOT_FOUND')
  }
  const post = await app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: b, payload: s3Body('/mnt/x') })
  t.equal(post.statusCode, 404)
  const none = await app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts' })
  t.equal(none.statusCode, 401)
  t.equal(none.json().error.code, 'UNAUTHORIZED')
  const wrong = await app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: auth('not-a-key-at-all-000000') })
  t.equal(wrong.statusCode, 401)
  const internalWithKey = await app.inject({ method: 'PUT', url: '/internal/sandboxes/sbX', headers: auth(TENANT_A.key), payload: { tenant: 'acme', agentUrl: 'http://127.0.0.1:1', agentToken: 'x'.repeat(20) } })
  t.equal(internalWithKey.statusCode, 403)
  const orchestrator = await app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: auth(INTERNAL_TOKEN) })
  t.equal(orchestrator.statusCode, 200, 'the orchestrator may act on any sandbox')
  t.equal(orchestrator.json().mounts.length, 1)
})

t.test('bad input is a 400 with a code naming the field, and changes nothing', async t => {
  const { app, agent, auth, registerSandbox, store } = await buildTestApp(t)
  await registerSandbox('sb1')
  const h = auth(TENANT_A.key)
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['unknown field', { ...s3Body(), color: 'blue' }, 'UNKNOWN_FIELD', /color/],
    ['relative path', s3Body('mnt/data'), 'INVALID_PATH', /path/],
    ['dot-dot path', s3Body('/mnt/../etc'), 'INVALID_PATH', /\.\./],
    ['system path', s3Body('/proc/x'), 'INVALID_PATH', /system location/],
    ['root path', s3Body('/'), 'INVALID_PATH', /system location/],
    ['control char in path', s3Body('/mnt/a\nb'), 'INVALID_PATH', /control/],
    ['no colon in remote', { ...s3Body(), remote: 'bucket' }, 'INVALID_REMOTE', /remote/],
    ['unknown backend', { ...s3Body(), backend: 'ftp' }, 'VALIDATION_FAILED', /backend/],
    ['unknown cred key', { ...s3Body(), creds: { ...S3_CREDS, env_auth: true } }, 'INVALID_CREDENTIALS', /creds\.env_auth/],
    ['newline in cred', { ...s3Body(), creds: { ...S3_CREDS, secret_access_key: 'a\n[x]\ntype = local' } }, 'INVALID_CREDENTIALS', /creds\.secret_access_key/],
    ['creds and rcloneConfig', { ...s3Body(), rcloneConfig: '[s3]\ntype = s3\n' }, 'VALIDATION_FAILED', /rcloneConfig/],
    ['backend without creds', { path: '/mnt/data', remote: 's3:b', backend: 's3' }, 'INVALID_CREDENTIALS', /creds/],
    ['raw local type', { path: '/mnt/data', remote: 'x:/', rcloneConfig: '[x]\ntype = local\n' }, 'REFUSED_OPTION', /type/],
    ['raw command option', { path: '/mnt/data', remote: 'w:', rcloneConfig: '[w]\ntype = webdav\nurl = http://127.0.0.1:1\nbearer_token_command = id\n' }, 'REFUSED_OPTION', /bearer_token_command/],
    ['raw section missing', { path: '/mnt/data', remote: 'nope:', rcloneConfig: '[w]\ntype = webdav\nurl = http://127.0.0.1:1\n' }, 'INVALID_RCLONE_CONFIG', /nope/],
    ['refused mount option', { ...s3Body(), mountOptions: ['--rc'] }, 'REFUSED_MOUNT_OPTION', /--rc/],
    ['daemon option', { ...s3Body(), mountOptions: ['--daemon'] }, 'REFUSED_MOUNT_OPTION', /--daemon/],
    ['readWrite as string', { ...s3Body(), readWrite: 'true' }, 'VALIDATION_FAILED', /readWrite/],
    ['metadata endpoint', { ...s3Body(), creds: { ...S3_CREDS, endpoint: 'http://169.254.169.254/' } }, 'REFUSED_OPTION', /endpoint/]
  ]
  for (const [name, payload, code, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: payload as object })
    t.equal(res.statusCode, 400, `${name}: ${res.body}`)
    t.equal(res.json().error?.code, code, name)
    t.match(res.json().error?.message, message, name)
    t.notOk(res.body.includes('canary-secret'), `${name}: no secret in the error`)
  }
  const badJson = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: { ...h, 'content-type': 'application/json' }, payload: '{"path": ' })
  t.equal(badJson.statusCode, 400)
  t.equal(badJson.json().error.code, 'INVALID_JSON')
  const huge = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: { ...s3Body(), rcloneConfig: 'x'.repeat(300000) } })
  t.equal(huge.statusCode, 413)
  t.equal(huge.json().error.code, 'BODY_TOO_LARGE')
  t.equal(agent.calls.filter(c => c.method === 'PUT').length, 0, 'the agent was never called')
  t.same(await store.listMounts('sb1'), [], 'the registry is unchanged')
})

t.test('agent failures: clear codes, nothing left in the registry', async t => {
  const { app, agent, auth, registerSandbox, store } = await buildTestApp(t, { agentTimeoutMs: 300 })
  await registerSandbox('sb1')
  const h = auth(TENANT_A.key)

  agent.failNextApply('PREFLIGHT_FAILED', 'AccessDenied: Access Denied', 'ERROR : s3: AccessDenied')
  const pre = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  t.equal(pre.statusCode, 422)
  t.equal(pre.json().error.code, 'REMOTE_PREFLIGHT_FAILED')
  t.match(pre.json().error.detail, { logTail: /AccessDenied/ })

  agent.failNextApply('RUNTIME_MISSING', 'sandbox image is missing rclone and/or fusermount3')
  const rt = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  t.equal(rt.statusCode, 424)
  t.equal(rt.json().error.code, 'SANDBOX_RUNTIME_MISSING')
  t.match(rt.json().error.message, /sandbox image is missing rclone and\/or fusermount3/)

  agent.failNextApply('MOUNT_POINT_REFUSED', '/mnt/data is not empty')
  const mp = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  t.equal(mp.statusCode, 409)
  t.equal(mp.json().error.code, 'MOUNT_POINT_REFUSED')

  agent.garbage = true
  const garbage = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  t.equal(garbage.statusCode, 502)
  t.equal(garbage.json().error.code, 'AGENT_ERROR')
  agent.garbage = false

  agent.delayMs = 1000
  const slow = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  t.equal(slow.statusCode, 504)
  t.equal(slow.json().error.code, 'AGENT_TIMEOUT')
  agent.delayMs = 0
  t.same(await store.listMounts('sb1'), [], 'no entry after any failed add')

  // a mount, then a busy remove, then the agent going away
  const ok = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  t.equal(ok.statusCode, 201)
  agent.failNextRemove('MOUNT_BUSY', '/mnt/data is busy: a process has files open in it')
  const busy = await app.inject({ method: 'DELETE', url: '/sandboxes/sb1/mounts?path=/mnt/data', headers: h })
  t.equal(busy.statusCode, 409)
  t.equal(busy.json().error.code, 'MOUNT_BUSY')
  t.equal((await store.listMounts('sb1'))[0].status, 'mounted', 'a refused remove keeps the mount as it was')

  await agent.close()
  const down = await app.inject({ method: 'DELETE', url: '/sandboxes/sb1/mounts?path=/mnt/data', headers: h })
  t.equal(down.statusCode, 503)
  t.equal(down.json().error.code, 'AGENT_UNREACHABLE')
  const addDown = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body('/mnt/two') })
  t.equal(addDown.statusCode, 503)
  const list = await app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts?refresh=true', headers: h })
  t.equal(list.statusCode, 200)
  t.same(list.json().mounts.map((m: { status: string }) => m.status), ['unknown'])
  t.equal((await store.listMounts('sb1')).length, 1, 'still exactly the one mount')
})

t.test('concurrent adds for one path end with exactly one mount', async t => {
  const { app, agent, auth, registerSandbox, store } = await buildTestApp(t)
  await registerSandbox('sb1')
  agent.delayMs = 20
  const results = await Promise.all(Array.from({ length: 12 }, async () =>
    await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: auth(TENANT_A.key), payload: s3Body() })))
  const codes = results.map(r => r.statusCode).sort()
  t.equal(codes.filter(c => c === 201).length, 1, 'one created')
  t.equal(codes.filter(c => c === 200).length, 11, 'the rest see it')
  t.equal((await store.listMounts('sb1')).length, 1)
  t.equal(agent.calls.filter(c => c.method === 'PUT').length, 1, 'applied once')
})

t.test('secrets never reach the log', async t => {
  const { app, auth, registerSandbox, logs, agent } = await buildTestApp(t)
  await registerSandbox('sb1')
  const h = auth(TENANT_A.key)
  await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body() })
  agent.failNextApply('PREFLIGHT_FAILED', 'denied')
  await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: s3Body('/mnt/b') })
  await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: { ...s3Body('/mnt/c'), creds: { ...S3_CREDS, bogus: 'canary-secret-s3-0001' } } })
  await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: { path: '/mnt/d', remote: 'w:', rcloneConfig: '[w]\ntype = webdav\nurl = http://127.0.0.1:1\npass = canary-raw-pass-0001\n' } })
  const all = logs.join('\n')
  t.ok(logs.length > 5, 'something was logged')
  for (const secret of [S3_CREDS.secret_access_key, TENANT_A.key, INTERNAL_TOKEN, agent.token, 'canary-raw-pass-0001']) {
    t.notOk(all.includes(secret), `log has no ${secret.slice(0, 12)}…`)
  }
})
