import t from 'tap'
import { buildTestApp, INTERNAL_TOKEN, TENANT_A, TENANT_B } from '../helpers/app.ts'

const WEBDAV = { url: 'http://127.0.0.1:9/dav', user: 'u', pass: 'canary-webdav-pass-1' }
const body = (path: string, extra: Record<string, unknown> = {}) => ({ path, remote: 'dav:files', backend: 'webdav', creds: WEBDAV, ...extra })

t.test('hibernate blocks add/remove, wake reconciles, destroy drops entries and secrets', async t => {
  const { app, agent, auth, registerSandbox, store } = await buildTestApp(t)
  await registerSandbox('sb1')
  const h = auth(TENANT_A.key)
  const i = auth(INTERNAL_TOKEN)
  const add = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/a') })
  t.equal(add.statusCode, 201)
  const id = add.json().id as string

  const hib = await app.inject({ method: 'POST', url: '/internal/sandboxes/sb1/events', headers: i, payload: { type: 'hibernating' } })
  t.equal(hib.statusCode, 204)
  const blocked = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/b') })
  t.equal(blocked.statusCode, 409)
  t.equal(blocked.json().error.code, 'SANDBOX_HIBERNATED')
  const blockedRm = await app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${id}`, headers: h })
  t.equal(blockedRm.statusCode, 409)
  const list = await app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: h })
  t.equal(list.json().mounts.length, 1, 'list answers from the registry while hibernated')
  const putsBefore = agent.calls.filter(c => c.method === 'PUT').length

  const woke = await app.inject({ method: 'POST', url: '/internal/sandboxes/sb1/events', headers: i, payload: { type: 'woke' } })
  t.equal(woke.statusCode, 200)
  t.match(woke.json(), { sandboxId: 'sb1', agentReachable: true, mounts: [{ mountId: id, found: 'mounted', action: 'none' }] })
  t.equal(agent.calls.filter(c => c.method === 'PUT').length, putsBefore, 'a live mount is not remounted on wake')

  // Cold restart: the agent lost everything; reconciliation puts it back with the same path and mode.
  agent.mounts.clear()
  const restarted = await app.inject({ method: 'POST', url: '/internal/sandboxes/sb1/events', headers: i, payload: { type: 'restarted' } })
  t.match(restarted.json().mounts, [{ mountId: id, found: 'missing', action: 'remounted', status: 'mounted' }])
  const again = agent.mounts.get(id)
  t.equal(again?.path, '/mnt/a')
  t.equal(again?.readWrite, false)
  t.match(again?.request.config, /pass = /, 'remounted from the stored config')

  // An orphan and a dead mount.
  agent.mounts.set('mnt_orphan', { mountId: 'mnt_orphan', path: '/mnt/orphan', readWrite: false, status: 'mounted', configHash: 'x', request: again!.request })
  agent.setStatus(id, 'failed', 'daemon gone')
  const rec = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: h })
  t.equal(rec.statusCode, 200)
  t.match(rec.json(), { orphansRemoved: [{ mountId: 'mnt_orphan' }], mounts: [{ mountId: id, found: 'failed', action: 'remounted' }] })
  t.notOk(agent.mounts.has('mnt_orphan'))
  const other = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: auth(TENANT_B.key) })
  t.equal(other.statusCode, 404)

  const destroyed = await app.inject({ method: 'POST', url: '/internal/sandboxes/sb1/events', headers: i, payload: { type: 'destroyed' } })
  t.equal(destroyed.statusCode, 204)
  t.equal(await store.getSandbox('sb1'), undefined)
  t.same(await store.listMounts('sb1'), [])
  const gone = await app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: h })
  t.equal(gone.statusCode, 404)
  const bad = await app.inject({ method: 'POST', url: '/internal/sandboxes/sb1/events', headers: i, payload: { type: 'exploded' } })
  t.equal(bad.statusCode, 400)
})

t.test('a failing remount shows as failed with lastError; an unreachable agent as unknown', async t => {
  const { app, agent, auth, registerSandbox } = await buildTestApp(t)
  await registerSandbox('sb1')
  const h = auth(TENANT_A.key)
  const id = (await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/a') })).json().id as string
  agent.mounts.clear()
  agent.failNextApply('PREFLIGHT_FAILED', 'dial tcp 127.0.0.1:9: connection refused')
  const rec = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: h })
  t.match(rec.json().mounts, [{ mountId: id, action: 'remount_failed', status: 'failed' }])
  const got = (await app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: h })).json().mounts[0]
  t.equal(got.status, 'failed')
  t.match(got.lastError, /connection refused/)
  t.ok(got.lastCheckedAt)
  await agent.close()
  const down = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: h })
  t.equal(down.json().agentReachable, false)
  t.equal((await app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: h })).json().mounts[0].status, 'unknown')
})

t.test('an add cut short (pending in the registry) is finished by reconciliation', async t => {
  const { app, agent, auth, registerSandbox, store } = await buildTestApp(t)
  await registerSandbox('sb1')
  const h = auth(TENANT_A.key)
  const id = (await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/a') })).json().id as string
  await store.updateMount('sb1', id, { status: 'pending' })
  agent.mounts.clear()
  const rec = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: h })
  t.match(rec.json().mounts, [{ mountId: id, action: 'add_completed', status: 'mounted' }])
  await store.updateMount('sb1', id, { status: 'removing' })
  const rec2 = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: h })
  t.match(rec2.json().mounts, [{ mountId: id, action: 'remove_completed' }])
  t.equal(agent.mounts.size, 0)
  t.same(await store.listMounts('sb1'), [])
})

t.test('named credentials: stored sealed, listed without values, used by mounts, rotated, refused while in use', async t => {
  const { app, agent, auth, registerSandbox, store, logs } = await buildTestApp(t)
  await registerSandbox('sb1')
  await registerSandbox('sb2')
  const h = auth(TENANT_A.key)
  const create = await app.inject({ method: 'POST', url: '/credentials', headers: h, payload: { name: 'team-dav', backend: 'webdav', creds: WEBDAV } })
  t.equal(create.statusCode, 201, create.body)
  t.same(create.json().keys, ['pass', 'url', 'user'])
  t.notOk(create.body.includes('canary'))
  const dup = await app.inject({ method: 'POST', url: '/credentials', headers: h, payload: { name: 'team-dav', backend: 'webdav', creds: WEBDAV } })
  t.equal(dup.statusCode, 409)
  const bad = await app.inject({ method: 'POST', url: '/credentials', headers: h, payload: { name: 'x', backend: 'webdav', creds: { url: 'http://127.0.0.1:1', bearer_token_command: 'id' } } })
  t.equal(bad.statusCode, 400)
  const raw = await store.getCredential(TENANT_A.tenant, 'team-dav')
  t.notOk(raw?.secret.includes('canary'), 'sealed at rest')

  const list = await app.inject({ method: 'GET', url: '/credentials', headers: h })
  t.same(list.json().credentials.map((c: { name: string }) => c.name), ['team-dav'])
  t.same((await app.inject({ method: 'GET', url: '/credentials', headers: auth(TENANT_B.key) })).json().credentials, [], 'another tenant sees none')

  const m1 = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: { path: '/mnt/a', remote: 'dav:one', credentialsRef: 'team-dav' } })
  t.equal(m1.statusCode, 201, m1.body)
  t.equal(m1.json().credentialsRef, 'team-dav')
  const m2 = await app.inject({ method: 'POST', url: '/sandboxes/sb2/mounts', headers: h, payload: { path: '/mnt/b', remote: 'dav:two', credentialsRef: 'team-dav', readWrite: true } })
  t.equal(m2.statusCode, 201)
  const missing = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: { path: '/mnt/c', remote: 'dav:x', credentialsRef: 'nope' } })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().error.code, 'CREDENTIAL_NOT_FOUND')
  const inUse = await app.inject({ method: 'DELETE', url: '/credentials/team-dav', headers: h })
  t.equal(inUse.statusCode, 409)
  t.equal(inUse.json().error.code, 'CREDENTIAL_IN_USE')

  // Rotation with credentials the agent's preflight refuses: nothing changes.
  agent.failNextApply('PREFLIGHT_FAILED', '401 Unauthorized')
  const refused = await app.inject({ method: 'PUT', url: '/credentials/team-dav', headers: h, payload: { creds: { ...WEBDAV, pass: 'canary-wrong-pass-2' } } })
  t.equal(refused.statusCode, 422)
  t.match(agent.mounts.get(m1.json().id)?.request.config, /pass = /)
  const oldConfig1 = agent.mounts.get(m1.json().id)?.request.config

  // Rotation that fails on the second mount rolls the first back.
  agent.failNextApply('PREFLIGHT_FAILED', 'denied', undefined, 1)
  const partial = await app.inject({ method: 'PUT', url: '/credentials/team-dav', headers: h, payload: { creds: { ...WEBDAV, pass: 'canary-new-pass-3' } } })
  t.equal(partial.statusCode, 422)
  t.equal(agent.mounts.get(m1.json().id)?.request.config, oldConfig1, 'the first mount was put back on the old credentials')
  t.notOk(agent.mounts.get(m1.json().id)?.request.redact.includes('canary-new-pass-3'))
  const sameAdd = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: { path: '/mnt/a', remote: 'dav:one', credentialsRef: 'team-dav' } })
  t.equal(sameAdd.statusCode, 200, 'the mount still matches its spec after the rollback')

  const ok = await app.inject({ method: 'PUT', url: '/credentials/team-dav', headers: h, payload: { creds: { ...WEBDAV, pass: 'canary-new-pass-4' } } })
  t.equal(ok.statusCode, 200, ok.body)
  t.equal(ok.json().rotated.length, 2)
  t.not(agent.mounts.get(m1.json().id)?.request.config, oldConfig1, 'the live mount got the new config')
  t.same(agent.mounts.get(m1.json().id)?.request.redact.includes('canary-new-pass-4'), true)

  const perMount = await app.inject({ method: 'PUT', url: `/sandboxes/sb1/mounts/${m1.json().id as string}/credentials`, headers: h, payload: { creds: WEBDAV } })
  t.equal(perMount.statusCode, 400, 'a mount on named credentials rotates through them')
  const inline = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/inline') })
  const rot = await app.inject({ method: 'PUT', url: `/sandboxes/sb1/mounts/${inline.json().id as string}/credentials`, headers: h, payload: { creds: { ...WEBDAV, pass: 'canary-rotated-5' } } })
  t.equal(rot.statusCode, 200, rot.body)
  t.ok(agent.mounts.get(inline.json().id)?.request.redact.includes('canary-rotated-5'))
  const same = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/inline', { creds: { ...WEBDAV, pass: 'canary-rotated-5' } }) })
  t.equal(same.statusCode, 200, 'after rotation the mount matches its new spec')

  await app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${m1.json().id as string}`, headers: h })
  await app.inject({ method: 'DELETE', url: `/sandboxes/sb2/mounts/${m2.json().id as string}`, headers: h })
  const del = await app.inject({ method: 'DELETE', url: '/credentials/team-dav', headers: h })
  t.equal(del.statusCode, 204)
  for (const secret of ['canary-webdav-pass-1', 'canary-wrong-pass-2', 'canary-new-pass-3', 'canary-new-pass-4', 'canary-rotated-5']) {
    t.notOk(logs.join('\n').includes(secret), `no ${secret} in the log`)
  }
})

t.test('Idempotency-Key: a retry returns the first answer and does nothing twice', async t => {
  const { app, agent, auth, registerSandbox, store } = await buildTestApp(t)
  await registerSandbox('sb1')
  const h = { ...auth(TENANT_A.key), 'idempotency-key': 'add-1' }
  const first = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/a') })
  t.equal(first.statusCode, 201)
  const retry = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/a') })
  t.equal(retry.statusCode, 201, 'the first answer, status included')
  t.equal(retry.headers['idempotent-replayed'], 'true')
  t.same(retry.json(), first.json())
  t.equal(agent.calls.filter(c => c.method === 'PUT').length, 1)
  const misuse = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/other') })
  t.equal(misuse.statusCode, 422)
  t.equal(misuse.json().error.code, 'IDEMPOTENCY_KEY_REUSED')
  const rm = { ...auth(TENANT_A.key), 'idempotency-key': 'rm-1' }
  t.equal((await app.inject({ method: 'DELETE', url: '/sandboxes/sb1/mounts?path=/mnt/a', headers: rm })).statusCode, 204)
  t.equal((await app.inject({ method: 'DELETE', url: '/sandboxes/sb1/mounts?path=/mnt/a', headers: rm })).statusCode, 204, 'retried remove answers as the first did')
  t.equal(agent.calls.filter(c => c.method === 'DELETE').length, 1)
  t.same(await store.listMounts('sb1'), [])
  const otherTenant = await app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: { ...auth(TENANT_B.key), 'idempotency-key': 'add-1' }, payload: body('/mnt/a') })
  t.equal(otherTenant.statusCode, 404, 'keys are per tenant: no replay of another tenant\'s answer')
})
