import t from 'tap'
import { randomBytes } from 'node:crypto'
import { SecretBox } from '../../src/secrets.ts'
import { buildTestApp, TENANT_A } from '../helpers/app.ts'
import { openTestStore } from '../helpers/store.ts'

t.test('a listing never serves a stale view: changes from another replica show at once', async t => {
  const store = await openTestStore(t)
  const box = new SecretBox([{ id: 'k1', key: randomBytes(32) }])
  const a = await buildTestApp(t, { store, box })
  const b = await buildTestApp(t, { store, box })
  await b.registerSandbox('sb1')
  const h = a.auth(TENANT_A.key)
  const body = (path: string) => ({ path, remote: 'dav:x', backend: 'webdav', creds: { url: 'http://127.0.0.1:9', user: 'u', pass: 'p' } })
  const list = async (): Promise<string[]> => (await a.app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: h })).json().mounts.map((m: { path: string, status: string }) => `${m.path}:${m.status}`)

  t.same(await list(), [])
  t.equal((await b.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/one') })).statusCode, 201)
  t.same(await list(), ['/mnt/one:mounted'], 'an add through the other replica')
  t.same(await list(), ['/mnt/one:mounted'], 'asked again')
  const id = (await b.app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: h })).json().mounts[0].id as string
  b.agent.setStatus(id, 'degraded', 'denied')
  await b.app.inject({ method: 'GET', url: `/sandboxes/sb1/mounts/${id}`, headers: h })
  t.same(await list(), ['/mnt/one:degraded'], 'a status change recorded by the other replica')
  await b.app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${id}`, headers: h })
  t.same(await list(), [], 'a remove through the other replica')
})
