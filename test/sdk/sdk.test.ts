import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { createClient, SandboxMountsError, NETWORK_ERROR, TIMEOUT, type Client } from '../../src/sdk/index.ts'
import { buildTestApp, INTERNAL_TOKEN, TENANT_A, TENANT_B, type TestApp } from '../helpers/app.ts'
import { buildSdkAndCli } from './build.ts'

const run = promisify(execFile)

const WEBDAV_CREDS = { url: 'http://127.0.0.1:9/dav', user: 'demo', pass: 'canary-webdav-pass-0001' }
const S3_CREDS = { provider: 'Other', access_key_id: 'AKIACANARY0001', secret_access_key: 'canary-secret-s3-0001', endpoint: 'http://127.0.0.1:9', force_path_style: true }

async function listening (t: Test): Promise<TestApp & { url: string }> {
  const ta = await buildTestApp(t)
  const url = await ta.app.listen({ port: 0, host: '127.0.0.1' })
  return { ...ta, url }
}

async function rejection (p: Promise<unknown>): Promise<SandboxMountsError> {
  try {
    await p
  } catch (err) {
    if (err instanceof SandboxMountsError) return err
    throw err
  }
  throw new Error('expected a rejection')
}

t.test('mounts: add typed webdav and s3, list, get, remove by path and by id', async t => {
  const { url, agent, registerSandbox } = await listening(t)
  await registerSandbox('sb1')
  const client = createClient({ baseUrl: url + '/', apiKey: TENANT_A.key })
  const mounts = client.sandbox('sb1').mounts

  const dav = await mounts.add({ path: '/mnt/dav', remote: 'webdav:', backend: 'webdav', creds: WEBDAV_CREDS })
  t.match(dav, { sandboxId: 'sb1', path: '/mnt/dav', remote: 'webdav:', backend: 'webdav', readWrite: false, status: 'mounted' })
  const applied = agent.mounts.get(dav.id)?.request
  t.ok(applied, 'the agent got the mount')
  t.match(applied?.config, /^pass = \S+$/m)
  t.notMatch(applied?.config, /canary-webdav-pass-0001/, 'the password reached the agent obscured')

  const s3 = await mounts.add({ path: '/mnt/s3', remote: 's3:bucket/data', backend: 's3', creds: S3_CREDS, readWrite: true, mountOptions: ['--dir-cache-time', '1m'] })
  t.match(s3, { backend: 's3', readWrite: true, mountOptions: ['--dir-cache-time', '1m'] })
  t.match(agent.mounts.get(s3.id)?.request.config, /force_path_style = true/)

  const again = await mounts.add({ path: '/mnt/s3', remote: 's3:bucket/data', backend: 's3', creds: S3_CREDS, readWrite: true, mountOptions: ['--dir-cache-time', '1m'] })
  t.equal(again.id, s3.id, 'the same spec answers the existing mount')

  const listed = await mounts.list()
  t.same(listed.map(m => m.path).sort(), ['/mnt/dav', '/mnt/s3'])
  t.notOk(JSON.stringify(listed).includes('canary'), 'no credential comes back')
  t.equal((await mounts.list({ refresh: true })).length, 2)

  agent.setStatus(dav.id, 'degraded', 'AccessDenied: ***')
  const got = await mounts.get(dav.id)
  t.equal(got.status, 'degraded')
  t.equal(got.lastError, 'AccessDenied: ***')

  await mounts.remove('/mnt/dav')
  await mounts.removeById(s3.id, { force: true })
  t.same(await mounts.list(), [])
  t.equal(agent.mounts.size, 0)

  const report = await mounts.reconcile()
  t.equal(report.sandboxId, 'sb1')
  t.equal(report.agentReachable, true)
})

t.test('idempotency keys are sent and replayed; a custom fetch sees every request', async t => {
  const { url, registerSandbox } = await listening(t)
  await registerSandbox('sb1')
  const seen: Array<{ method: string, url: string, key: string | null, replayed: string | null }> = []
  const client = createClient({
    baseUrl: url,
    apiKey: TENANT_A.key,
    fetch: async (input, init) => {
      const res = await fetch(input, init)
      seen.push({ method: init.method ?? 'GET', url: input, key: new Headers(init.headers).get('idempotency-key'), replayed: res.headers.get('idempotent-replayed') })
      return res
    }
  })
  const mounts = client.sandbox('sb1').mounts
  const body = { path: '/mnt/dav', remote: 'webdav:', backend: 'webdav' as const, creds: WEBDAV_CREDS }
  const first = await mounts.add(body, { idempotencyKey: 'add-0001' })
  const second = await mounts.add(body, { idempotencyKey: 'add-0001' })
  t.equal(second.id, first.id)
  t.same(seen.map(s => [s.key, s.replayed]), [['add-0001', null], ['add-0001', 'true']])
  const reused = await rejection(mounts.add({ ...body, path: '/mnt/other' }, { idempotencyKey: 'add-0001' }))
  t.equal(reused.code, 'IDEMPOTENCY_KEY_REUSED')
  await mounts.remove('/mnt/dav', { idempotencyKey: 'rm-0001' })
  await mounts.remove('/mnt/dav', { idempotencyKey: 'rm-0001' })
  t.match(seen.at(-1), { method: 'DELETE', key: 'rm-0001', replayed: 'true' })
  t.match(seen.at(-1)?.url, /\/sandboxes\/sb1\/mounts\?path=%2Fmnt%2Fdav$/)
})

t.test('credentials: create, list, mount by reference, rotate, remove', async t => {
  const { url, agent, registerSandbox } = await listening(t)
  await registerSandbox('sb1')
  const client = createClient({ baseUrl: url, apiKey: TENANT_A.key })
  const created = await client.credentials.create({ name: 'team-dav', backend: 'webdav', creds: WEBDAV_CREDS })
  t.match(created, { name: 'team-dav', backend: 'webdav' })
  t.same([...created.keys].sort(), ['pass', 'url', 'user'])
  t.notOk(JSON.stringify(created).includes('canary'))
  t.same((await client.credentials.list()).map(c => c.name), ['team-dav'])

  const mounts = client.sandbox('sb1').mounts
  const m = await mounts.add({ path: '/mnt/team', remote: 'team:', credentialsRef: 'team-dav' })
  t.equal(m.credentialsRef, 'team-dav')
  const inUse = await rejection(client.credentials.remove('team-dav'))
  t.equal(inUse.status, 409)
  t.equal(inUse.code, 'CREDENTIAL_IN_USE')

  const rotated = await client.credentials.rotate('team-dav', { ...WEBDAV_CREDS, pass: 'canary-webdav-pass-0002' })
  t.same(rotated.rotated.map(r => r.mountId), [m.id])
  t.match(agent.mounts.get(m.id)?.request.config, /^pass = \S+$/m)

  const inline = await mounts.add({ path: '/mnt/inline', remote: 'webdav:', backend: 'webdav', creds: WEBDAV_CREDS })
  const swapped = await mounts.rotate(inline.id, { ...WEBDAV_CREDS, user: 'demo2' })
  t.same(swapped.rotated.map(r => r.path), ['/mnt/inline'])
  t.match(agent.mounts.get(inline.id)?.request.config, /^user = demo2$/m)

  await mounts.remove('/mnt/team')
  await client.credentials.remove('team-dav')
  t.same(await client.credentials.list(), [])
  const gone = await rejection(client.credentials.remove('team-dav'))
  t.equal(gone.code, 'CREDENTIAL_NOT_FOUND')
  t.equal(gone.status, 404)
})

t.test('refused input and missing things surface as SandboxMountsError with the service code', async t => {
  const { url, agent, registerSandbox } = await listening(t)
  await registerSandbox('sb1')
  const mounts = createClient({ baseUrl: url, apiKey: TENANT_A.key }).sandbox('sb1').mounts

  const bad = await rejection(mounts.add({ path: 'relative/dir', remote: 's3:b', backend: 's3', creds: S3_CREDS }))
  t.ok(bad instanceof Error)
  t.equal(bad.name, 'SandboxMountsError')
  t.equal(bad.status, 400)
  t.equal(bad.code, 'INVALID_PATH')
  t.match(bad.message, /path/)
  t.notOk(bad.message.includes('canary'), 'no secret in the message')

  const refused = await rejection(mounts.add({ path: '/mnt/x', remote: 's3:b', backend: 's3', creds: { ...S3_CREDS, env_auth: true } }))
  t.equal(refused.code, 'INVALID_CREDENTIALS')
  t.match(refused.message, /creds\.env_auth/)

  agent.failNextApply('PREFLIGHT_FAILED', 'AccessDenied: Access Denied', 'ERROR : s3: AccessDenied')
  const preflight = await rejection(mounts.add({ path: '/mnt/x', remote: 's3:b', backend: 's3', creds: S3_CREDS }))
  t.equal(preflight.status, 422)
  t.equal(preflight.code, 'REMOTE_PREFLIGHT_FAILED')
  t.match(preflight.detail, { logTail: /AccessDenied/ })

  const missing = await rejection(mounts.get('m_nope'))
  t.match(missing, { status: 404, code: 'MOUNT_NOT_FOUND' })
  const otherTenant = await rejection(createClient({ baseUrl: url, apiKey: TENANT_B.key }).sandbox('sb1').mounts.list())
  t.match(otherTenant, { status: 404, code: 'SANDBOX_NOT_FOUND' })
  const wrongKey = await rejection(createClient({ baseUrl: url, apiKey: 'not-a-key-0123456789' }).backends())
  t.match(wrongKey, { status: 401, code: 'UNAUTHORIZED' })
  t.throws(() => createClient({ baseUrl: 'not a url', apiKey: 'k' }), /baseUrl/)
  t.throws(() => createClient({ baseUrl: url, apiKey: '' }), /apiKey/)
})

t.test('orchestrator helpers with the internal token: register, events, hibernation', async t => {
  const { url, agent } = await listening(t)
  const internal = createClient({ baseUrl: url, apiKey: INTERNAL_TOKEN })
  const sb = await internal.internal.registerSandbox('sb9', { tenant: TENANT_A.tenant, agentUrl: agent.url, agentToken: agent.token })
  t.match(sb, { id: 'sb9', tenant: TENANT_A.tenant, agentUrl: agent.url, state: 'running' })
  t.notOk(JSON.stringify(sb).includes(agent.token), 'the agent token is never returned')

  const tenant = createClient({ baseUrl: url, apiKey: TENANT_A.key })
  const denied = await rejection(tenant.internal.registerSandbox('sb8', { tenant: 'acme', agentUrl: agent.url, agentToken: agent.token }))
  t.match(denied, { status: 403, code: 'FORBIDDEN' })

  t.equal(await internal.internal.event('sb9', 'hibernating'), undefined)
  const asleep = await rejection(tenant.sandbox('sb9').mounts.add({ path: '/mnt/dav', remote: 'webdav:', backend: 'webdav', creds: WEBDAV_CREDS }))
  t.match(asleep, { status: 409, code: 'SANDBOX_HIBERNATED' })
  const woke = await internal.internal.event('sb9', 'woke')
  t.match(woke, { sandboxId: 'sb9', agentReachable: true })
  t.equal((await tenant.sandbox('sb9').mounts.add({ path: '/mnt/dav', remote: 'webdav:', backend: 'webdav', creds: WEBDAV_CREDS })).status, 'mounted')
  t.equal(await internal.internal.event('sb9', 'destroyed'), undefined)
  t.match(await rejection(tenant.sandbox('sb9').mounts.list()), { code: 'SANDBOX_NOT_FOUND' })

  const backends = await tenant.backends()
  t.same(backends.map(b => b.backend).sort(), ['azureblob', 'dropbox', 'gcs', 's3', 'sftp', 'webdav'])
  t.match(backends.find(b => b.backend === 'webdav'), { secretKeys: ['pass', 'bearer_token'] })
})

t.test('a server that is gone is NETWORK_ERROR, a slow answer TIMEOUT', async t => {
  const { app, url, registerSandbox } = await listening(t)
  await registerSandbox('sb1')
  const client: Client = createClient({ baseUrl: url, apiKey: TENANT_A.key })
  t.same(await client.sandbox('sb1').mounts.list(), [])
  await app.close()
  const down = await rejection(client.sandbox('sb1').mounts.list())
  t.equal(down.code, NETWORK_ERROR)
  t.equal(down.status, 0)
  t.match(down.message, /ECONNREFUSED/)
  t.notOk(down.message.includes(TENANT_A.key), 'the key is not in the message')

  // A server that accepts connections and never answers.
  const sockets = new Set<Socket>()
  const hung = createServer(sock => { sockets.add(sock) })
  await new Promise<void>(resolve => hung.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => hung.close(resolve))
  })
  const port = (hung.address() as AddressInfo).port
  const slow = createClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: TENANT_A.key, timeoutMs: 200 })
  const started = Date.now()
  const timedOut = await rejection(slow.sandbox('sb1').mounts.list())
  t.match(timedOut, { status: 0, code: TIMEOUT })
  t.ok(Date.now() - started < 900, 'gave up at the deadline')
})

t.test('the built SDK works from plain JavaScript', async t => {
  const { url, registerSandbox } = await listening(t)
  await registerSandbox('sb1')
  const built = await buildSdkAndCli(t)

  const script = `
    import { createClient, SandboxMountsError } from ${JSON.stringify(built.sdk)}
    const client = createClient({ baseUrl: process.env.URL, apiKey: process.env.KEY })
    const backends = await client.backends()
    const mounts = client.sandbox('sb1').mounts
    const m = await mounts.add({ path: '/mnt/js', remote: 'webdav:', backend: 'webdav', creds: { url: 'http://127.0.0.1:9', pass: 'canary-js-0001' } })
    let code
    try { await mounts.add({ path: 'nope', remote: 'webdav:', backend: 'webdav', creds: { url: 'http://127.0.0.1:9' } }) } catch (err) { code = err instanceof SandboxMountsError ? err.code : 'other' }
    console.log(JSON.stringify({ backends: backends.length, status: m.status, listed: (await mounts.list()).length, code }))
  `
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH, URL: url, KEY: TENANT_A.key } })
  t.same(JSON.parse(stdout), { backends: 6, status: 'mounted', listed: 1, code: 'INVALID_PATH' })
})
