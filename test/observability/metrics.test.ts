import t, { type Test } from 'tap'
import path from 'node:path'
import { writeFile } from 'node:fs/promises'
import { INTERNAL_TOKEN, TENANT_A, TENANT_B } from '../helpers/app.ts'
import { buildConfiguredApp, type ConfiguredApp } from '../load/app.ts'
import { buildE2E } from '../helpers/e2e.ts'
import { freePort, startWebdavServer } from '../helpers/servers.ts'

// /metrics speaks the Prometheus text format behind the internal token, and its series move as
// a scenario runs: requests by route and status with latency, mounts by status, agent calls
// and their latency, reconcile runs and repairs, refusals. Log lines are attributable: every
// line written while serving a request has its reqId; the agent's mount lines have the mount id.

interface Sample { name: string, labels: Record<string, string>, value: number }
interface Scrape { samples: Sample[], types: Map<string, string> }

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? (-?(?:\d+(?:\.\d*)?(?:e[+-]?\d+)?|\+Inf|-Inf|NaN))$/

/** Parses the exposition format strictly: every line a comment, blank, or a well-formed sample. */
function parse (text: string): Scrape {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type !== null) { types.set(type[1], type[2]); continue }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$/.test(line)) continue
    const m = SAMPLE_LINE.exec(line)
    if (m === null) throw new Error(`not Prometheus text format: ${JSON.stringify(line)}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').slice(1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]
    samples.push({ name: m[1], labels, value: Number(m[3].replace('+Inf', 'Infinity')) })
  }
  for (const s of samples) {
    const family = s.name.replace(/_(bucket|sum|count)$/, '')
    if (!types.has(s.name) && !types.has(family)) throw new Error(`sample ${s.name} has no # TYPE`)
  }
  return { samples, types }
}

function value (s: Scrape, name: string, labels: Record<string, string> = {}): number {
  return s.samples.filter(x => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((sum, x) => sum + x.value, 0)
}

/** Histogram buckets are cumulative and end at +Inf = _count, for every label set. */
function checkHistograms (t: Test, s: Scrape): void {
  for (const [family, type] of s.types) {
    if (type !== 'histogram') continue
    const series = new Map<string, Sample[]>()
    for (const b of s.samples.filter(x => x.name === `${family}_bucket`)) {
      const { le, ...rest } = b.labels
      const key = JSON.stringify(rest)
      series.set(key, [...(series.get(key) ?? []), b])
    }
    for (const [key, buckets] of series) {
      const values = buckets.map(b => b.value)
      const sorted = values.every((v, i) => i === 0 || v >= values[i - 1])
      const inf = buckets.find(b => b.labels.le === '+Inf')?.value
      const count = value(s, `${family}_count`, JSON.parse(key) as Record<string, string>)
      if (!sorted || inf !== count) t.fail(`${family} ${key}: buckets ${values.join(',')} vs count ${count}`)
    }
  }
}

async function scrape (c: ConfiguredApp): Promise<Scrape> {
  const res = await c.app.inject({ method: 'GET', url: '/metrics', headers: c.auth(INTERNAL_TOKEN) })
  if (res.statusCode !== 200) throw new Error(`/metrics ${res.statusCode}`)
  if (!/^text\/plain; version=0\.0\.4/.test(String(res.headers['content-type']))) throw new Error(`content-type ${String(res.headers['content-type'])}`)
  return parse(res.body)
}

const DAV = { url: 'http://127.0.0.1:9/dav', user: 'u', pass: 'canary-metrics-pass' }
const body = (p: string): Record<string, unknown> => ({ path: p, remote: 'dav:x', backend: 'webdav', creds: DAV })
const HTTP = 'sandbox_mounts_http_request_duration_seconds'
const MOUNTS_ROUTE = '/sandboxes/:sandboxId/mounts'

t.test('/metrics: Prometheus text, internal token only, and every series moves with the scenario', async t => {
  const c = await buildConfiguredApp(t, { RATE_LIMIT_PER_MINUTE: '20', MAX_IN_FLIGHT: '0' })
  const a = c.auth(TENANT_A.key)
  const i = c.auth(INTERNAL_TOKEN)
  t.equal((await c.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401, 'no token: 401')
  t.equal((await c.app.inject({ method: 'GET', url: '/metrics', headers: a })).statusCode, 403, 'an API key: 403')
  await c.registerSandbox('sb1')
  await c.registerSandbox('sbB', TENANT_B.tenant)

  const s0 = await scrape(c)
  const added = await c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/a') })
  t.equal(added.statusCode, 201)
  const id = added.json().id as string
  c.agent.failNextApply('PREFLIGHT_FAILED', 'AccessDenied')
  t.equal((await c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: a, payload: body('/mnt/b') })).statusCode, 422)
  await c.app.inject({ method: 'GET', url: '/no/such/route/4f3a9c', headers: i })
  const s1 = await scrape(c)
  checkHistograms(t, s1)

  t.equal(value(s1, `${HTTP}_count`, { route: MOUNTS_ROUTE, method: 'POST', status: '201' }) - value(s0, `${HTTP}_count`, { route: MOUNTS_ROUTE, method: 'POST', status: '201' }), 1, 'requests by route, method and status: the 201')
  t.equal(value(s1, `${HTTP}_count`, { route: MOUNTS_ROUTE, method: 'POST', status: '422' }), 1, 'and the 422')
  t.ok(value(s1, `${HTTP}_sum`, { route: MOUNTS_ROUTE, method: 'POST' }) > 0, 'with latency')
  t.ok(value(s1, `${HTTP}_bucket`, { route: MOUNTS_ROUTE, method: 'POST', status: '201', le: '+Inf' }) >= 1, 'in histogram buckets')
  t.notOk(s1.samples.some(x => Object.values(x.labels).some(v => v.includes('4f3a9c'))), 'an unknown URL does not become a label (bounded cardinality)')
  t.ok(value(s1, `${HTTP}_count`, { route: 'unmatched', status: '404' }) >= 1, 'it is counted as unmatched')
  t.equal(value(s1, 'sandbox_mounts_mounts', { status: 'mounted' }), 1, 'mounts by status: 1 mounted')
  t.equal(value(s1, 'sandbox_mounts_agent_calls_total', { op: 'apply', outcome: 'ok' }), 1, 'agent calls: one good apply')
  t.equal(value(s1, 'sandbox_mounts_agent_calls_total', { op: 'apply', outcome: 'error' }), 1, 'and one failed apply')
  t.equal(value(s1, 'sandbox_mounts_agent_call_duration_seconds_count', { op: 'apply' }), 2, 'agent call latency observed for both')
  t.equal(s1.types.get('sandbox_mounts_agent_call_duration_seconds'), 'histogram')

  // Reconciliation: a dead mount is remounted, an orphan is removed, an unreachable agent is counted.
  c.agent.setStatus(id, 'failed', 'daemon gone')
  const orphan = c.agent.mounts.get(id)
  if (orphan !== undefined) c.agent.mounts.set('mnt_orphan', { ...orphan, mountId: 'mnt_orphan', path: '/mnt/orphan' })
  t.equal((await c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: a })).statusCode, 200)
  await c.registerSandbox('sb1', TENANT_A.tenant, `http://127.0.0.1:${await freePort()}`)
  t.equal((await c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: i })).statusCode, 200)
  const s2 = await scrape(c)
  t.equal(value(s2, 'sandbox_mounts_reconcile_runs_total', { agent: 'reachable' }) - value(s1, 'sandbox_mounts_reconcile_runs_total', { agent: 'reachable' }), 1, 'reconcile runs with the agent reachable')
  t.equal(value(s2, 'sandbox_mounts_reconcile_runs_total', { agent: 'unreachable' }), 1, 'and unreachable')
  t.equal(value(s2, 'sandbox_mounts_reconcile_repairs_total', { action: 'remounted' }), 1, 'repairs: remounted')
  t.equal(value(s2, 'sandbox_mounts_reconcile_repairs_total', { action: 'orphan_removed' }), 1, 'repairs: orphan removed')
  t.equal(value(s2, 'sandbox_mounts_mounts', { status: 'unknown' }), 1, 'the gauge follows the registry: now unknown')
  t.equal(value(s2, 'sandbox_mounts_mounts', { status: 'mounted' }), 0)
  t.ok(value(s2, 'sandbox_mounts_agent_calls_total', { op: 'list', outcome: 'error' }) >= 1, 'the failed listing is an agent call error')

  // Rate limit refusals, by reason.
  const b = c.auth(TENANT_B.key)
  let refused = 0
  for (let n = 0; n < 25; n++) if ((await c.app.inject({ method: 'GET', url: '/sandboxes/sbB/mounts', headers: b })).statusCode === 429) refused++
  const s3 = await scrape(c)
  t.ok(refused >= 4, `tenant B was refused ${refused} times`)
  t.equal(value(s3, 'sandbox_mounts_refused_requests_total', { reason: 'rate_limited' }), refused, 'refusals counted by reason')
  t.equal(value(s3, `${HTTP}_count`, { status: '429' }), refused, 'and as 429 answers')
  checkHistograms(t, s3)
})

t.test('/metrics: back-pressure refusals are counted as overloaded', async t => {
  const c = await buildConfiguredApp(t, { RATE_LIMIT_PER_MINUTE: '0', MAX_IN_FLIGHT: '1' })
  await c.registerSandbox('sb1')
  c.agent.delayMs = 400
  const slow = c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: c.auth(TENANT_A.key), payload: body('/mnt/a') })
  await new Promise(resolve => setTimeout(resolve, 100))
  const over = await c.app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts', headers: c.auth(TENANT_A.key) })
  t.equal(over.statusCode, 503)
  t.equal((await slow).statusCode, 201)
  t.equal(value(await scrape(c), 'sandbox_mounts_refused_requests_total', { reason: 'overloaded' }), 1)
})

t.test('logs: every line written while serving a request carries its reqId', async t => {
  const c = await buildConfiguredApp(t, { RATE_LIMIT_PER_MINUTE: '0', MAX_IN_FLIGHT: '0', LOG_LEVEL: 'debug' })
  await c.registerSandbox('sb1')
  const a = c.auth(TENANT_A.key)
  c.logs.length = 0
  const requests: Array<{ id: string, run: () => Promise<unknown> }> = []
  const add = (id: string, run: (headers: Record<string, string>) => Promise<unknown>): void => { requests.push({ id, run: async () => await run({ ...a, 'x-request-id': id }) }) }
  let mountId = ''
  add('req-add', async h => { mountId = (await c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/a') })).json().id })
  add('req-fail', async h => { c.agent.failNextApply('PREFLIGHT_FAILED', 'denied'); await c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: body('/mnt/b') }) })
  add('req-bad', async h => await c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts', headers: h, payload: { path: 1 } }))
  add('req-degraded', async h => { c.agent.setStatus(mountId, 'degraded', 'remote failing'); await c.app.inject({ method: 'GET', url: `/sandboxes/sb1/mounts/${mountId}`, headers: h }) })
  add('req-reconcile', async h => { c.agent.setStatus(mountId, 'failed', 'gone'); await c.app.inject({ method: 'POST', url: '/sandboxes/sb1/mounts/reconcile', headers: h }) })
  add('req-rotate', async h => await c.app.inject({ method: 'PUT', url: `/sandboxes/sb1/mounts/${mountId}/credentials`, headers: h, payload: { creds: { ...DAV, pass: 'canary-metrics-pass-2' } } }))
  add('req-unreachable', async h => {
    await c.registerSandbox('sb1', TENANT_A.tenant, `http://127.0.0.1:${await freePort()}`)
    await c.app.inject({ method: 'GET', url: '/sandboxes/sb1/mounts?refresh=true', headers: h })
  })
  add('req-remove', async h => {
    await c.registerSandbox('sb1')
    await c.app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${mountId}`, headers: h })
  })
  const byRequest = new Map<string, string[]>()
  for (const r of requests) {
    const from = c.logs.length
    await r.run()
    byRequest.set(r.id, c.logs.slice(from))
  }
  for (const [id, lines] of byRequest) {
    const parsed = lines.map(l => JSON.parse(l) as { reqId?: string, msg?: string, event?: string })
    const ours = parsed.filter(p => p.reqId === id)
    t.ok(ours.length >= 2, `${id}: ${ours.length} lines carry its reqId`)
    // Registration of the sandbox in between is another request with its own id.
    const stray = parsed.filter(p => p.reqId === undefined)
    t.same(stray.map(p => p.msg), [], `${id}: no line without a reqId`)
  }
  const events = (id: string): string[] => (byRequest.get(id) ?? []).map(l => JSON.parse(l) as { reqId?: string, event?: string }).filter(p => p.reqId === id && p.event !== undefined).map(p => p.event as string)
  t.same(events('req-add'), ['added'], 'the added event carries the request id')
  t.same(events('req-fail'), ['failed'])
  t.same(events('req-degraded'), ['degraded'])
  t.same(events('req-reconcile'), ['remounted'])
  t.same(events('req-rotate'), ['rotated'])
  t.same(events('req-remove'), ['removed'])
  t.ok((byRequest.get('req-unreachable') ?? []).some(l => l.includes('agent unreachable while listing') && l.includes('"reqId":"req-unreachable"')), 'service warnings carry the request id')
  t.notOk(c.logs.join('\n').includes('canary-'), 'no secret in the log')
})

t.test('logs: the real agent\'s lines about a mount carry its mount id', async t => {
  const dav = await startWebdavServer()
  t.teardown(dav.stop)
  await writeFile(path.join(dav.dir, 'f.txt'), 'x')
  const e = await buildE2E(t, { sandboxId: 'obs' })
  const h = e.auth(TENANT_A.key)
  const mnt = path.join(e.root, 'mnt', 'obs')
  const from = e.agentLogs.length
  const res = await e.app.inject({ method: 'POST', url: '/sandboxes/obs/mounts', headers: h, payload: { path: mnt, remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: dav.user, pass: dav.pass } } })
  t.equal(res.statusCode, 201, res.body)
  const id = res.json().id as string
  const bad = await e.app.inject({ method: 'POST', url: '/sandboxes/obs/mounts', headers: h, payload: { path: `${mnt}-bad`, remote: 'dav:', backend: 'webdav', creds: { url: dav.url, user: dav.user, pass: 'canary-wrong-obs-pass' } } })
  t.equal(bad.statusCode, 422, bad.body)
  t.equal((await e.app.inject({ method: 'DELETE', url: `/sandboxes/obs/mounts/${id}`, headers: h })).statusCode, 204)
  const lines = e.agentLogs.slice(from).map(l => JSON.parse(l) as { msg?: string, mountId?: string, req?: unknown, res?: unknown, reqId?: string })
  const lifecycle = new Set(['incoming request', 'request completed'])
  const mountLines = lines.filter(l => !lifecycle.has(l.msg ?? ''))
  t.ok(mountLines.length >= 2, `the agent logged ${mountLines.length} lines about mounts`)
  for (const l of mountLines) t.ok(typeof l.mountId === 'string' && l.mountId.startsWith('mnt_'), `"${l.msg ?? ''}" carries a mount id`)
  t.ok(mountLines.some(l => l.mountId === id && l.msg === 'mounted'), 'the mount line names the mount')
  t.ok(mountLines.some(l => l.mountId === id && l.msg === 'removed'), 'the removal line names the mount')
  t.notOk([...e.logs, ...e.agentLogs].join('\n').includes('canary-'), 'no secret in either log')
})
