import t from 'tap'
import { request } from 'node:http'
import { INTERNAL_TOKEN, TENANT_A, TENANT_B } from '../helpers/app.ts'
import { buildConfiguredApp } from './app.ts'

// Per-tenant rate limits (429 + Retry-After; other tenants and the orchestrator unaffected) and
// back-pressure (503 OVERLOADED + Retry-After beyond MAX_IN_FLIGHT), with small limits.

const DAV = { url: 'http://127.0.0.1:9/dav', user: 'u', pass: 'canary-limits-pass' }
const body = (path: string): Record<string, unknown> => ({ path, remote: 'dav:x', backend: 'webdav', creds: DAV })

t.test('rate limit: a tenant over its budget gets 429 with Retry-After; others are unaffected', async t => {
  const c = await buildConfiguredApp(t, { RATE_LIMIT_PER_MINUTE: '60', MAX_IN_FLIGHT: '0' })
  await c.registerSandbox('sbA', TENANT_A.tenant)
  await c.registerSandbox('sbB', TENANT_B.tenant)
  const a = c.auth(TENANT_A.key)
  const b = c.auth(TENANT_B.key)

  const statuses: number[] = []
  for (let i = 0; i < 60; i++) statuses.push((await c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: a })).statusCode)
  t.same([...new Set(statuses)], [200], 'the whole budget of 60 is served')
  const over = await c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: a })
  t.equal(over.statusCode, 429)
  t.equal(over.json().error.code, 'RATE_LIMITED')
  const retryAfter = Number(over.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 2, `Retry-After is a small whole number of seconds (${String(over.headers['retry-after'])})`)

  const puts = c.agent.calls.filter(x => x.method === 'PUT').length
  const refusedAdd = await c.app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: a, payload: body('/mnt/x') })
  t.equal(refusedAdd.statusCode, 429, 'writes are limited too')
  t.equal(c.agent.calls.filter(x => x.method === 'PUT').length, puts, 'a limited request never reaches the agent')
  t.same(await c.store.listMounts('sbA'), [])

  // Bodies that fail validation, unknown routes and malformed URLs spend the budget as well:
  // otherwise a tenant could flood the service with requests that are never counted.
  for (const [method, url, payload] of [['POST', '/sandboxes/sbA/mounts', { path: 1 }], ['GET', '/sandboxes/sbA/nope', undefined], ['GET', '/sandboxes/sbA/mounts?x=1', undefined]] as const) {
    const res = await c.app.inject({ method, url, headers: a, ...(payload === undefined ? {} : { payload }) })
    t.equal(res.statusCode, 429, `${method} ${url}: limited before validation or routing`)
  }

  const other = await c.app.inject({ method: 'GET', url: '/sandboxes/sbB/mounts', headers: b })
  t.equal(other.statusCode, 200, 'another tenant is not affected')
  const orchestrator = await c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: c.auth(INTERNAL_TOKEN) })
  t.equal(orchestrator.statusCode, 200, 'the orchestrator is not limited')
  const health = await c.app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200, 'health checks are not limited')
  const anonymous = await c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts' })
  t.equal(anonymous.statusCode, 401, 'an anonymous request is refused by authentication, not counted against the tenant')

  await new Promise(resolve => setTimeout(resolve, retryAfter * 1000 + 100))
  const later = await c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: a })
  t.equal(later.statusCode, 200, 'after Retry-After the tenant is served again')
  const burst = await Promise.all(Array.from({ length: 5 }, async () => (await c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: a })).statusCode))
  t.ok(burst.filter(s => s === 429).length >= 4, 'but the bucket refills at the configured rate, not all at once')
})

t.test('back-pressure: beyond MAX_IN_FLIGHT requests get 503 OVERLOADED with Retry-After, and capacity comes back', async t => {
  const c = await buildConfiguredApp(t, { RATE_LIMIT_PER_MINUTE: '0', MAX_IN_FLIGHT: '4' })
  await c.registerSandbox('sbA', TENANT_A.tenant)
  await c.registerSandbox('sbB', TENANT_B.tenant)
  const a = c.auth(TENANT_A.key)
  c.agent.delayMs = 700

  const slow = Array.from({ length: 4 }, async (_, i) => await c.app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: a, payload: body(`/mnt/s${i}`) }))
  await new Promise(resolve => setTimeout(resolve, 100))
  const refused = await Promise.all([
    c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: a }),
    c.app.inject({ method: 'GET', url: '/sandboxes/sbB/mounts', headers: c.auth(TENANT_B.key) }),
    c.app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: a, payload: body('/mnt/extra') }),
    c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: c.auth(INTERNAL_TOKEN) })
  ])
  for (const res of refused) {
    t.equal(res.statusCode, 503, `${res.statusCode}: refused while 4 are in flight`)
    t.equal(res.json().error.code, 'OVERLOADED')
    t.equal(res.headers['retry-after'], '1')
  }
  const health = await c.app.inject({ method: 'GET', url: '/healthz' })
  t.equal(health.statusCode, 200, 'liveness still answers under load (an orchestrator must not restart a busy replica)')
  const metrics = await c.app.inject({ method: 'GET', url: '/metrics', headers: c.auth(INTERNAL_TOKEN) })
  t.equal(metrics.statusCode, 200, 'metrics still answer under load')

  const done = await Promise.all(slow)
  t.same(done.map(r => r.statusCode), [201, 201, 201, 201], 'the requests in flight finish normally')
  t.same((await c.store.listMounts('sbA')).map(m => m.path).sort(), ['/mnt/s0', '/mnt/s1', '/mnt/s2', '/mnt/s3'], 'the refused add left nothing')
  c.agent.delayMs = 0

  // Nothing leaks: errors of every kind give their slot back.
  for (let round = 0; round < 3; round++) {
    await Promise.all([
      c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts' }),
      c.app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: a, payload: { path: 1 } }),
      c.app.inject({ method: 'GET', url: '/nope', headers: a }),
      c.app.inject({ method: 'GET', url: '/sandboxes/%ff/mounts', headers: a })
    ])
  }
  const after = await Promise.all(Array.from({ length: 4 }, async () => (await c.app.inject({ method: 'GET', url: '/sandboxes/sbA/mounts', headers: a })).statusCode))
  t.same(after, [200, 200, 200, 200], 'the full capacity of 4 is available again')
})

t.test('back-pressure over real HTTP: clients that hang up do not leak capacity', async t => {
  const c = await buildConfiguredApp(t, { RATE_LIMIT_PER_MINUTE: '0', MAX_IN_FLIGHT: '3' })
  await c.registerSandbox('sbA', TENANT_A.tenant)
  const address = await c.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = new URL(address)
  c.agent.delayMs = 400
  // Three clients start slow adds and hang up before the answer.
  for (let i = 0; i < 3; i++) {
    const payload = JSON.stringify(body(`/mnt/h${i}`))
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/sandboxes/sbA/mounts', headers: { authorization: `Bearer ${TENANT_A.key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } })
    req.on('error', () => {})
    req.end(payload)
    setTimeout(() => req.destroy(), 100)
  }
  await new Promise(resolve => setTimeout(resolve, 1500))
  c.agent.delayMs = 0
  const statuses = await Promise.all(Array.from({ length: 3 }, async () => (await fetch(`${address}/sandboxes/sbA/mounts`, { headers: { authorization: `Bearer ${TENANT_A.key}` } })).status))
  t.same(statuses, [200, 200, 200], 'all 3 slots are free once the abandoned requests have finished')
  const mounts = await c.store.listMounts('sbA')
  t.ok(mounts.every(m => m.status === 'mounted'), 'abandoned adds still completed consistently')
  t.equal(c.agent.mounts.size, mounts.length, 'registry and agent agree')
})
