import t from 'tap'
import { randomBytes } from 'node:crypto'
import { openStore } from '../../src/mounts/store.ts'
import { SecretBox } from '../../src/secrets.ts'
import { buildTestApp, TENANT_A } from '../helpers/app.ts'
import { testStoreOptions } from '../helpers/store.ts'

t.test('restarting the service loses nothing: mounts, sandboxes and sealed configs survive', async t => {
  const opts = await testStoreOptions(t)
  const box = new SecretBox([{ id: 'k1', key: randomBytes(32) }])
  const first = await openStore(opts)
  const a = await buildTestApp(t, { store: first, box })
  await a.registerSandbox('sb1')
  const add = await a.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a.auth(TENANT_A.key), payload: { path: '/mnt/keep', remote: 'dav:x', backend: 'webdav', readWrite: true, creds: { url: 'http://127.0.0.1:9', user: 'u', pass: 'p' } } })
  t.equal(add.statusCode, 201)
  await a.app.close()
  await first.close()

  const second = await openStore(opts)
  t.teardown(async () => { await second.close() })
  const b = await buildTestApp(t, { store: second, box })
  // The new process gets a new agent address for the same sandbox.
  await b.registerSandbox('sb1')
  const list = await b.app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: b.auth(TENANT_A.key) })
  t.same(list.json().mounts, [add.json()], 'the same mount, unchanged')
  const rec = await b.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: b.auth(TENANT_A.key) })
  t.match(rec.json().mounts, [{ action: 'remounted', status: 'mounted' }], 'its sealed config still opens and remounts')
  t.equal([...b.agent.mounts.values()][0].request.readWrite, true)
})
