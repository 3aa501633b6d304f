import t, { type Test } from 'tap'
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import { createServer as createNetServer, type Socket } from 'node:net'
import { buildTestApp, INTERNAL_TOKEN, TENANT_A, type TestApp } from '../helpers/app.ts'
import { freePort } from '../helpers/servers.ts'

// The control plane facing a sick agent: unreachable, slow, answering garbage or the wrong
// shape, redirecting, closing the connection mid-answer. Every case answers with a clear code
// (AGENT_UNREACHABLE 503, AGENT_TIMEOUT 504, AGENT_ERROR 502), the registry stays consistent
// with the VM, and retries with an Idempotency-Key never mount twice.

const DAV = { url: 'http://127.0.0.1:9/dav', user: 'u', pass: 'canary-faults-pass-1' }
const body = (path: string): Record<string, unknown> => ({ path, remote: 'dav:x', backend: 'webdav', creds: DAV })
const AGENT_CODES: Record<string, number> = { AGENT_UNREACHABLE: 503, AGENT_TIMEOUT: 504, AGENT_ERROR: 502 }

async function pointAt (h: TestApp, sandboxId: string, agentUrl: string, agentToken = h.agent.token): Promise<void> {
  const res = await h.app.inject({ method: 'PUT', url: `/internal/sandboxes/${sandboxId}`, headers: h.auth(INTERNAL_TOKEN), payload: { tenant: TENANT_A.tenant, agentUrl, agentToken } })
  if (res.statusCode >= 300) throw new Error(`register: ${res.statusCode} ${res.body}`)
}

async function deadUrl (): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`
}

/** Registry and VM agree: the same mount ids on both sides. */
async function agree (t: Test, h: TestApp, sandboxId: string, label: string): Promise<void> {
  const registry = (await h.store.listMounts(sandboxId)).map(m => m.id).sort()
  const vm = [...h.agent.mounts.keys()].sort()
  t.same(vm, registry, `${label}: the agent holds exactly the registry's mounts`)
}

async function waitFor (cond: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (cond()) return true
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return cond()
}

/**
 * Stands in front of the agent double and forwards each request at once, but holds the answer
 * back for `delayMs`: the agent has done the work when the control plane gives up waiting.
 */
async function lateProxy (t: Test, target: string): Promise<{ url: string, delayMs: number }> {
  const state = { url: '', delayMs: 0 }
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', chunk => chunks.push(chunk as Buffer))
    req.on('end', () => {
      const headers: Record<string, string> = {}
      for (const name of ['authorization', 'content-type']) if (typeof req.headers[name] === 'string') headers[name] = req.headers[name]
      const hasBody = chunks.length > 0
      fetch(new URL(req.url ?? '/', target), { method: req.method, headers, ...(hasBody ? { body: Buffer.concat(chunks) } : {}) })
        .then(async answer => {
          const text = await answer.text()
          setTimeout(() => {
            if (res.destroyed) return
            res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' })
            res.end(text)
          }, state.delayMs)
        }, () => { res.destroy() })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) })
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return state
}

function expectCode (t: Test, res: { statusCode: number, json: () => any, body: string }, code: string, label: string): void {
  t.equal(res.json().error?.code, code, `${label}: ${code}`)
  t.equal(res.statusCode, AGENT_CODES[code], `${label}: HTTP ${AGENT_CODES[code]}`)
  t.notOk(res.body.includes('canary-'), `${label}: no secret in the answer`)
}

t.test('agent unreachable: 503, nothing recorded, reads answer from the registry, reconcile reports it', async t => {
  const h = await buildTestApp(t)
  const a = h.auth(TENANT_A.key)
  await h.registerSandbox('sb1')
  const added = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/a') })
  t.equal(added.statusCode, 201)
  const id = added.json().id as string

  await pointAt(h, 'sb1', await deadUrl())
  const started = Date.now()
  const add = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/b') })
  expectCode(t, add, 'AGENT_UNREACHABLE', 'add')
  t.ok(Date.now() - started < 3000, 'a refused connection fails fast')
  t.same((await h.store.listMounts('sb1')).map(m => m.path), ['/mnt/a'], 'the failed add left nothing')

  const get = await h.app.inject({ method: 'GET', url: `/sandboxes/sb1/mounts/${id}`, headers: a })
  t.equal(get.statusCode, 200)
  t.equal(get.json().status, 'unknown', 'GET says unknown rather than failing')
  const list = await h.app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts?refresh=true', headers: a })
  t.same(list.json().mounts.map((m: { status: string }) => m.status), ['unknown'])

  const del = await h.app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${id}`, headers: a })
  expectCode(t, del, 'AGENT_UNREACHABLE', 'remove')
  t.equal((await h.store.getMount('sb1', id))?.status, 'mounted', 'a remove that never reached the agent keeps the mount as it was')
  const rotate = await h.app.inject({ method: 'PUT', url: `/sandboxes/sb1/mounts/${id}/credentials`, headers: a, payload: { creds: { ...DAV, pass: 'canary-faults-pass-2' } } })
  expectCode(t, rotate, 'AGENT_UNREACHABLE', 'rotate')
  const before = await h.store.getMount('sb1', id)

  const rec = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: a })
  t.equal(rec.statusCode, 200)
  t.match(rec.json(), { agentReachable: false, mounts: [{ mountId: id, action: 'unknown', status: 'unknown' }], orphansRemoved: [] })
  t.equal((await h.store.getMount('sb1', id))?.configSecret, before?.configSecret, 'the failed rotation kept the old config')

  // The agent is back: reconciliation finds the mount live and does not touch it.
  await pointAt(h, 'sb1', h.agent.url)
  const puts = h.agent.calls.filter(c => c.method === 'PUT').length
  const back = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: a })
  t.match(back.json(), { agentReachable: true, mounts: [{ mountId: id, found: 'mounted', action: 'none', status: 'mounted' }] })
  t.equal(h.agent.calls.filter(c => c.method === 'PUT').length, puts, 'no remount of a live mount')
  await agree(t, h, 'sb1', 'after the outage')
})

t.test('agent slow: 504 within the timeout; what lands late is reconciled away, a late remove is not undone', async t => {
  const h = await buildTestApp(t, { agentTimeoutMs: 300 })
  const a = h.auth(TENANT_A.key)
  await h.registerSandbox('sb1')
  const proxy = await lateProxy(t, h.agent.url)
  await pointAt(h, 'sb1', proxy.url)

  proxy.delayMs = 1000
  const started = Date.now()
  const add = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/late') })
  const took = Date.now() - started
  expectCode(t, add, 'AGENT_TIMEOUT', 'add')
  t.ok(took < 1000, `answered within the timeout, not the agent's delay (${took} ms)`)
  t.same(await h.store.listMounts('sb1'), [], 'no entry for a timed-out add')
  t.ok(await waitFor(() => h.agent.mounts.size === 1), 'the agent finished the mount after the caller gave up')
  proxy.delayMs = 0
  const rec = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: a })
  t.equal(rec.json().orphansRemoved.length, 1, 'reconciliation removes the late mount nobody recorded')
  await agree(t, h, 'sb1', 'after a late add')

  const ok = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/kept') })
  t.equal(ok.statusCode, 201)
  const id = ok.json().id as string
  proxy.delayMs = 1000
  const del = await h.app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${id}`, headers: a })
  expectCode(t, del, 'AGENT_TIMEOUT', 'remove')
  t.ok(await waitFor(() => !h.agent.mounts.has(id)), 'the agent finished the remove after the caller gave up')
  proxy.delayMs = 0
  const after = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: a })
  t.equal(after.statusCode, 200)
  t.notOk(h.agent.mounts.has(id), 'reconciliation does not mount again what the caller asked to remove')
  t.equal(await h.store.getMount('sb1', id), undefined, 'and the entry is gone')
  await agree(t, h, 'sb1', 'after a late remove')

  // A slow listing never blocks reads: GET answers `unknown` within its own short timeout.
  const m = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/read') })
  proxy.delayMs = 6000
  const get = await h.app.inject({ method: 'GET', url: `/sandboxes/sb1/mounts/${m.json().id as string}`, headers: a })
  t.equal(get.statusCode, 200)
  t.equal(get.json().status, 'unknown')
  proxy.delayMs = 0
})

t.test('agent answering garbage, the wrong shape or a redirect: 502 AGENT_ERROR, nothing recorded, nothing sent elsewhere', async t => {
  const h = await buildTestApp(t, { agentTimeoutMs: 2000 })
  const a = h.auth(TENANT_A.key)
  await h.registerSandbox('sb1')
  const seed = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/seed') })
  const seedId = seed.json().id as string

  h.agent.garbage = true
  expectCode(t, await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/g') }), 'AGENT_ERROR', 'non-JSON apply')
  expectCode(t, await h.app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${seedId}`, headers: a }), 'AGENT_ERROR', 'non-JSON remove')
  t.equal((await h.app.inject({ method: 'GET', url: `/sandboxes/sb1/mounts/${seedId}`, headers: a })).json().status, 'unknown')
  h.agent.garbage = false

  // A captive server stands for anything a redirect could point at.
  const captured: string[] = []
  const captive = createHttpServer((req: IncomingMessage, res) => {
    let data = ''
    req.on('data', chunk => { data += String(chunk) })
    req.on('end', () => { captured.push(`${req.method ?? ''} ${req.url ?? ''} ${data}`); res.end('{}') })
  })
  await new Promise<void>(resolve => captive.listen(0, '127.0.0.1', resolve))
  const captivePort = (captive.address() as { port: number }).port
  let answer: (res: import('node:http').ServerResponse) => void = res => res.end()
  const sick = createHttpServer((req, res) => { req.resume(); req.on('end', () => answer(res)) })
  await new Promise<void>(resolve => sick.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    sick.closeAllConnections(); captive.closeAllConnections()
    await Promise.all([new Promise(resolve => sick.close(resolve)), new Promise(resolve => captive.close(resolve))])
  })
  await pointAt(h, 'sb1', `http://127.0.0.1:${(sick.address() as { port: number }).port}`)
  const json = (status: number, text: string) => (res: import('node:http').ServerResponse) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(text) }
  const shapes: Array<[string, (res: import('node:http').ServerResponse) => void]> = [
    ['empty object', json(200, '{}')],
    ['array', json(200, '[]')],
    ['null', json(200, 'null')],
    ['mounts null', json(200, '{"mounts":null}')],
    ['mounts of junk', json(200, '{"mounts":[{"x":1}]}')],
    ['wrong status value', json(200, '{"mountId":"m","path":"/mnt/x","readWrite":false,"status":"exploded","configHash":"h"}')],
    ['error without code', json(500, '{"error":"boom"}')],
    ['HTML error page', res => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<html>bad gateway</html>') }],
    ['empty 200', res => { res.writeHead(200); res.end() }],
    ['huge number', json(200, '{"mountId":"m","path":"/mnt/x","readWrite":false,"status":"mounted","configHash":' + '9'.repeat(400) + '}')],
    ['307 to a captive server', res => { res.writeHead(307, { location: `http://127.0.0.1:${captivePort}/steal` }); res.end() }],
    ['302 to a captive server', res => { res.writeHead(302, { location: `http://127.0.0.1:${captivePort}/steal` }); res.end() }]
  ]
  for (const [label, respond] of shapes) {
    answer = respond
    const before = JSON.stringify(await h.store.listMounts('sb1'))
    const add = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/shape') })
    expectCode(t, add, 'AGENT_ERROR', `${label}: add`)
    t.equal(JSON.stringify(await h.store.listMounts('sb1')), before, `${label}: registry unchanged`)
    const list = await h.app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts?refresh=true', headers: a })
    t.equal(list.statusCode, 200, `${label}: list answers`)
    t.same(list.json().mounts.map((m: { status: string }) => m.status), ['unknown'], `${label}: list says unknown`)
    const rec = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: a })
    t.equal(rec.statusCode, 200, `${label}: reconcile answers`)
    t.equal(rec.json().agentReachable, false, `${label}: and reports the agent as not answering`)
  }
  t.same(captured, [], 'no request followed a redirect (the apply body carries secrets)')
  t.notOk(h.logs.join('\n').includes('canary-'), 'no secret in the log')
})

t.test('connection closed mid-answer or never answered: clear codes, nothing recorded', async t => {
  const h = await buildTestApp(t, { agentTimeoutMs: 600 })
  const a = h.auth(TENANT_A.key)
  let mode = 'destroy'
  const sockets = new Set<Socket>()
  const raw = createNetServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.once('data', () => {
      switch (mode) {
        case 'destroy': socket.destroy(); break
        case 'half headers': socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n'); break
        case 'half body': socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"mountId":"m","pa'); setTimeout(() => socket.destroy(), 50); break
        case 'reset after headers': socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'); socket.resetAndDestroy(); break
        case 'not HTTP': socket.end('SSH-2.0-OpenSSH_9.2\r\n'); break
        case 'silent': break
        case 'slow body': socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{'); break
      }
    })
  })
  await new Promise<void>(resolve => raw.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise(resolve => raw.close(resolve)) })
  await h.registerSandbox('sb1')
  const seed = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/seed') })
  t.equal(seed.statusCode, 201)
  await pointAt(h, 'sb1', `http://127.0.0.1:${(raw.address() as { port: number }).port}`)
  const expected: Record<string, string[]> = {
    destroy: ['AGENT_UNREACHABLE'],
    'half headers': ['AGENT_UNREACHABLE'],
    'half body': ['AGENT_UNREACHABLE'],
    'reset after headers': ['AGENT_UNREACHABLE'],
    'not HTTP': ['AGENT_UNREACHABLE', 'AGENT_ERROR'],
    silent: ['AGENT_TIMEOUT'],
    'slow body': ['AGENT_TIMEOUT']
  }
  for (const [m, codes] of Object.entries(expected)) {
    mode = m
    const before = JSON.stringify(await h.store.listMounts('sb1'))
    const started = Date.now()
    const add = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/cut') })
    const code = add.json().error?.code as string
    t.ok(codes.includes(code), `${m}: ${code} is one of ${codes.join(', ')}`)
    t.equal(add.statusCode, AGENT_CODES[code], `${m}: status matches the code`)
    t.ok(Date.now() - started < 600 + 1500, `${m}: answered in ${Date.now() - started} ms`)
    t.equal(JSON.stringify(await h.store.listMounts('sb1')), before, `${m}: registry unchanged`)
    const del = await h.app.inject({ method: 'DELETE', url: '/sandboxes/sb1/mounts?path=/mnt/seed', headers: a })
    t.ok(del.statusCode >= 502 && del.statusCode <= 504, `${m}: remove answers ${del.statusCode}`)
    t.equal((await h.store.getMountByPath('sb1', '/mnt/seed'))?.path, '/mnt/seed', `${m}: the mount is still recorded`)
  }
})

t.test('retries with an Idempotency-Key never mount twice', async t => {
  const h = await buildTestApp(t, { agentTimeoutMs: 300 })
  const a = h.auth(TENANT_A.key)
  await h.registerSandbox('sb1')
  const puts = (): number => h.agent.calls.filter(c => c.method === 'PUT').length
  const post = async (key: string, path: string) => await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: { ...a, 'idempotency-key': key }, payload: body(path) })

  // A plain retry after success replays the first answer.
  const first = await post('k-ok', '/mnt/one')
  const replay = await post('k-ok', '/mnt/one')
  t.equal(first.statusCode, 201)
  t.equal(replay.statusCode, 201)
  t.equal(replay.headers['idempotent-replayed'], 'true')
  t.equal(replay.json().id, first.json().id)
  t.equal(puts(), 1, 'applied once')
  t.equal((await post('k-ok', '/mnt/other')).statusCode, 422, 'the key with another body is refused')

  // The agent was down: the 503 is not kept, so the retry does the work once.
  await pointAt(h, 'sb1', await deadUrl())
  const down = await post('k-down', '/mnt/two')
  t.equal(down.statusCode, 503)
  await pointAt(h, 'sb1', h.agent.url)
  const retried = await post('k-down', '/mnt/two')
  t.equal(retried.statusCode, 201, 'the retry after the outage mounts')
  t.notOk(retried.headers['idempotent-replayed'])
  t.equal((await post('k-down', '/mnt/two')).json().id, retried.json().id, 'and is replayed from then on')

  // Timed out: the agent finished late; the retry mounts once more, reconciliation removes the stray one.
  const proxy = await lateProxy(t, h.agent.url)
  await pointAt(h, 'sb1', proxy.url)
  proxy.delayMs = 800
  const slow = await post('k-slow', '/mnt/three')
  t.equal(slow.statusCode, 504)
  t.ok(await waitFor(() => [...h.agent.mounts.values()].some(m => m.path === '/mnt/three')), 'the late apply landed')
  proxy.delayMs = 0
  const again = await post('k-slow', '/mnt/three')
  t.equal(again.statusCode, 201)
  t.equal((await h.store.listMounts('sb1')).filter(m => m.path === '/mnt/three').length, 1, 'one entry for the path')
  const rec = await h.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: a })
  t.equal(rec.json().orphansRemoved.length, 1, 'the stray late mount is removed')
  t.equal([...h.agent.mounts.values()].filter(m => m.path === '/mnt/three').length, 1, 'one live mount for the path')

  // Concurrent retries of one request.
  h.agent.delayMs = 50
  const before = puts()
  const burst = await Promise.all(Array.from({ length: 8 }, async () => await post('k-burst', '/mnt/four')))
  h.agent.delayMs = 0
  t.same([...new Set(burst.map(r => r.statusCode))].filter(s => s >= 300), [], 'every concurrent retry succeeds')
  t.equal(new Set(burst.map(r => r.json().id)).size, 1, 'all name the same mount')
  t.equal(puts() - before, 1, 'applied once')

  // Removal retries.
  const id = burst[0].json().id as string
  const dels = h.agent.calls.filter(c => c.method === 'DELETE').length
  const del1 = await h.app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${id}`, headers: { ...a, 'idempotency-key': 'k-del' } })
  const del2 = await h.app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${id}`, headers: { ...a, 'idempotency-key': 'k-del' } })
  t.equal(del1.statusCode, 204)
  t.equal(del2.statusCode, 204)
  t.equal(del2.headers['idempotent-replayed'], 'true')
  t.equal(h.agent.calls.filter(c => c.method === 'DELETE').length - dels, 1, 'removed once')
  await agree(t, h, 'sb1', 'after every retry')
  t.same((await h.store.listMounts('sb1')).map(m => m.path).sort(), ['/mnt/one', '/mnt/three', '/mnt/two'])
})
