import t from 'tap'
import { buildTestApp, INTERNAL_TOKEN, TENANT_A, TENANT_B } from '../helpers/app.ts'

// Tenant isolation over every route the OpenAPI document lists: a route added later without a
// sample below fails this test, so nothing escapes the matrix.

const DAV = { url: 'http://127.0.0.1:9/dav', user: 'u', pass: 'canary-tenant-pass-1' }
const PUBLIC = new Set(['healthz', 'readyz'])

interface Sample {
  /** Body for the route; undefined for none. */
  body?: (agent: { url: string, token: string }) => unknown
  query?: string
}

const SAMPLES: Record<string, Sample> = {
  healthz: {},
  readyz: {},
  listBackends: {},
  addMount: { body: () => ({ path: '/mnt/new', remote: 'dav:new', backend: 'webdav', creds: DAV }) },
  listMounts: { query: 'refresh=true' },
  removeMountByPath: { query: 'path=/mnt/b' },
  getMount: {},
  removeMount: {},
  registerSandbox: { body: agent => ({ tenant: TENANT_A.tenant, agentUrl: agent.url, agentToken: agent.token }) },
  createCredential: { body: () => ({ name: 'new-cred', backend: 'webdav', creds: DAV }) },
  listCredentials: {},
  rotateCredential: { body: () => ({ creds: { ...DAV, pass: 'canary-tenant-pass-2' } }) },
  deleteCredential: {},
  rotateMountCredentials: { body: () => ({ creds: { ...DAV, pass: 'canary-tenant-pass-3' } }) },
  reconcileMounts: {},
  sandboxEvent: { body: () => ({ type: 'woke' }) }
}

interface Route { method: string, template: string, operationId: string }

t.test('every route: no key 401, a bad key 401, API keys refused on internal routes, another tenant 404', async t => {
  const { app, agent, auth, registerSandbox, store } = await buildTestApp(t)
  await registerSandbox('sbA', TENANT_A.tenant)
  await registerSandbox('sbB', TENANT_B.tenant)
  const a = auth(TENANT_A.key)
  const b = auth(TENANT_B.key)

  // Tenant A's resources: two mounts (one for each kind of removal) and named credentials.
  const m1 = await app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: a, payload: { path: '/mnt/a', remote: 'dav:a', backend: 'webdav', creds: DAV } })
  const m2 = await app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: a, payload: { path: '/mnt/b', remote: 'dav:b', backend: 'webdav', creds: DAV } })
  const cred = await app.inject({ method: 'POST', url: '/credentials', headers: a, payload: { name: 'a-cred', backend: 'webdav', creds: DAV } })
  t.same([m1.statusCode, m2.statusCode, cred.statusCode], [201, 201, 201], 'fixtures created')
  const mountId = m1.json().id as string

  await app.ready()
  const paths = (app.swagger() as { paths: Record<string, Record<string, { operationId?: string }>> }).paths
  const routes: Route[] = []
  for (const [template, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) routes.push({ method: method.toUpperCase(), template, operationId: op.operationId ?? `${method} ${template}` })
  }
  t.ok(routes.length >= 16, `the OpenAPI document lists ${routes.length} operations`)
  for (const r of routes) t.ok(Object.hasOwn(SAMPLES, r.operationId), `${r.operationId} has a sample request in this matrix`)

  const urlFor = (r: Route, ids: { sandboxId: string, mountId: string, name: string }): string => {
    const path = r.template.replace('{sandboxId}', ids.sandboxId).replace('{mountId}', ids.mountId).replace('{name}', ids.name)
    const q = SAMPLES[r.operationId]?.query
    return q === undefined ? path : `${path}?${q}`
  }
  const send = async (r: Route, url: string, headers: Record<string, string>) => {
    const body = SAMPLES[r.operationId]?.body?.(agent)
    return await app.inject({ method: r.method as 'GET', url, headers, ...(body === undefined ? {} : { payload: body as object }) })
  }
  const ownIds = { sandboxId: 'sbA', mountId, name: 'a-cred' }
  const callsBefore = agent.calls.length
  const mountsBefore = JSON.stringify(await store.listMounts('sbA'))
  const credBefore = JSON.stringify(await store.getCredential(TENANT_A.tenant, 'a-cred'))

  for (const r of routes) {
    const label = `${r.method} ${r.template}`
    const url = urlFor(r, ownIds)
    const anonymous = await send(r, url, {})
    if (PUBLIC.has(r.operationId)) {
      t.equal(anonymous.statusCode, 200, `${label}: public`)
      continue
    }
    t.equal(anonymous.statusCode, 401, `${label}: no key`)
    t.equal(anonymous.json().error?.code, 'UNAUTHORIZED', `${label}: no key code`)
    for (const header of ['Bearer not-a-key-at-all-000000', `Basic ${Buffer.from(`acme:${TENANT_A.key}`).toString('base64')}`, `Bearer ${TENANT_A.key}x`, TENANT_A.key]) {
      const wrong = await send(r, url, { authorization: header })
      t.equal(wrong.statusCode, 401, `${label}: ${header.split(' ')[0]} credential that is not a valid bearer key`)
    }
    if (r.template.startsWith('/internal/')) {
      for (const key of [a, b]) {
        const res = await send(r, url, key)
        t.equal(res.statusCode, 403, `${label}: an API key is refused`)
        t.equal(res.json().error?.code, 'FORBIDDEN', `${label}: FORBIDDEN`)
      }
      continue
    }
    if (r.template.includes('{sandboxId}')) {
      const res = await send(r, url, b)
      t.equal(res.statusCode, 404, `${label}: another tenant's sandbox (${res.body})`)
      t.equal(res.json().error?.code, 'SANDBOX_NOT_FOUND', `${label}: SANDBOX_NOT_FOUND`)
      // Not an existence oracle: the answer for a sandbox that does not exist is the same.
      const none = await send(r, urlFor(r, { ...ownIds, sandboxId: 'sbNone' }), b)
      t.equal(none.statusCode, res.statusCode, `${label}: same status as a missing sandbox`)
      t.equal(none.body.replace('sbNone', 'sbA'), res.body, `${label}: same body as a missing sandbox`)
      // Tenant B's own sandbox with A's mount id: the mount is not found there either.
      if (r.template.includes('{mountId}')) {
        const cross = await send(r, urlFor(r, { ...ownIds, sandboxId: 'sbB' }), b)
        t.equal(cross.statusCode, 404, `${label}: A's mount id under B's sandbox`)
        t.equal(cross.json().error?.code, 'MOUNT_NOT_FOUND', `${label}: MOUNT_NOT_FOUND`)
      }
      continue
    }
    if (r.template.includes('{name}')) {
      for (const query of ['', `?tenant=${TENANT_A.tenant}`]) {
        const res = await send(r, urlFor(r, ownIds) + query, b)
        t.equal(res.statusCode, 404, `${label}${query}: another tenant's credentials`)
        t.equal(res.json().error?.code, 'CREDENTIAL_NOT_FOUND', `${label}${query}: CREDENTIAL_NOT_FOUND`)
      }
      continue
    }
    if (r.operationId === 'listCredentials') {
      for (const query of ['', `?tenant=${TENANT_A.tenant}`]) {
        const res = await send(r, `/credentials${query}`, b)
        t.equal(res.statusCode, 200)
        t.same(res.json().credentials, [], `GET /credentials${query}: tenant B sees none of A's credentials`)
      }
    }
  }

  t.equal(agent.calls.length, callsBefore, 'no refused request reached an agent')
  t.equal(JSON.stringify(await store.listMounts('sbA')), mountsBefore, 'A\'s mounts are unchanged')
  t.equal(JSON.stringify(await store.getCredential(TENANT_A.tenant, 'a-cred')), credBefore, 'A\'s credentials are unchanged')

  // B creating credentials named like A's lands in B's own namespace.
  const bCred = await app.inject({ method: 'POST', url: `/credentials?tenant=${TENANT_A.tenant}`, headers: b, payload: { name: 'a-cred', backend: 'webdav', creds: DAV } })
  t.equal(bCred.statusCode, 201, 'B may use the same name: names are per tenant')
  t.ok(await store.getCredential(TENANT_B.tenant, 'a-cred'), 'stored under B')
  t.equal(JSON.stringify(await store.getCredential(TENANT_A.tenant, 'a-cred')), credBefore, 'A\'s record untouched')
  // B cannot mount A's named credentials by name either: the name resolves in B's namespace.
  await app.inject({ method: 'DELETE', url: '/credentials/a-cred', headers: b })
  const refMount = await app.inject({ method: 'POST', url: '/sandboxes/sbB/mounts', headers: b, payload: { path: '/mnt/x', remote: 'dav:x', credentialsRef: 'a-cred' } })
  t.equal(refMount.statusCode, 404, 'credentialsRef never reaches another tenant\'s credentials')
  t.equal(refMount.json().error.code, 'CREDENTIAL_NOT_FOUND')

  // The orchestrator cannot hand a sandbox with mounts to another tenant.
  const steal = await app.inject({ method: 'PUT', url: '/internal/sandboxes/sbA', headers: auth(INTERNAL_TOKEN), payload: { tenant: TENANT_B.tenant, agentUrl: agent.url, agentToken: agent.token } })
  t.equal(steal.statusCode, 409)
  t.equal(steal.json().error.code, 'SANDBOX_CONFLICT')

  // Idempotency keys are per tenant: B reusing A's key does not replay A's answer.
  const idemBody = { path: '/mnt/idem', remote: 'dav:i', backend: 'webdav', creds: DAV }
  const first = await app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: { ...a, 'idempotency-key': 'shared-key-1' }, payload: idemBody })
  t.equal(first.statusCode, 201)
  const other = await app.inject({ method: 'POST', url: '/sandboxes/sbA/mounts', headers: { ...b, 'idempotency-key': 'shared-key-1' }, payload: idemBody })
  t.equal(other.statusCode, 404, 'B\'s retry with A\'s key is judged on its own')
  t.notOk(other.headers['idempotent-replayed'])
  t.notOk(other.body.includes(first.json().id), 'A\'s mount id is not disclosed')

  // Finally, each route works for its owner, so every 404 above was about ownership.
  const ordered = [...routes].sort((x, y) => Number(x.method === 'DELETE') - Number(y.method === 'DELETE'))
  for (const r of ordered) {
    const key = r.template.startsWith('/internal/') ? auth(INTERNAL_TOKEN) : a
    const res = await send(r, urlFor(r, r.operationId === 'removeMount' ? ownIds : { ...ownIds, mountId }), key)
    t.ok(res.statusCode >= 200 && res.statusCode < 300, `${r.method} ${r.template}: the owner gets ${res.statusCode}`)
  }
  const orchestrator = await app.inject({ method: 'GET', url: '/sandboxes/sbB/mounts', headers: auth(INTERNAL_TOKEN) })
  t.equal(orchestrator.statusCode, 200, 'the internal token may act on any sandbox')
  const noTenant = await app.inject({ method: 'GET', url: '/credentials', headers: auth(INTERNAL_TOKEN) })
  t.equal(noTenant.statusCode, 400, 'the internal token must name the tenant for credentials')
})

t.test('/metrics: internal token only', async t => {
  const { app, auth } = await buildTestApp(t)
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: auth(TENANT_A.key) })).statusCode, 403)
  const ok = await app.inject({ method: 'GET', url: '/metrics', headers: auth(INTERNAL_TOKEN) })
  t.equal(ok.statusCode, 200)
})

t.test('public prefixes do not open other routes', async t => {
  const { app, registerSandbox } = await buildTestApp(t)
  await registerSandbox('sbA', TENANT_A.tenant)
  // Paths that start like a public route, or try to reach a private one through it.
  for (const url of ['/healthz/../sandboxes/sbA/mounts', '/docs/../sandboxes/sbA/mounts', '/healthzx', '/openapi.json/../sandboxes/sbA/mounts', '/docs/%2e%2e/sandboxes/sbA/mounts', '//sandboxes/sbA/mounts', '/sandboxes/sbA/mounts?x=/healthz', '/SANDBOXES/sbA/mounts']) {
    const res = await app.inject({ method: 'GET', url })
    t.not(res.statusCode, 200, `${url}: ${res.statusCode}`)
    t.notOk(res.body.includes('"mounts"'), `${url}: no mount list without a key`)
  }
})
