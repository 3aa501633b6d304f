import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestApp, INTERNAL_TOKEN, TENANT_A, type TestApp } from '../helpers/app.ts'
import { parseRcloneConfig } from '../../src/rclone/parse.ts'
import { canonicalType, endpointProblem, isRefusedKey } from '../../src/rclone/policy.ts'
import { MOUNT_OPTIONS, normalizeMountOptions } from '../../src/rclone/mount-options.ts'
import { obscure } from '../../src/rclone/obscure.ts'
import {
  BACKENDS, HOSTILE_KEYS, MOUNT_OPTION_TRICKS, PATH_TRICKS, REMOTE_TRICKS, credValue, hostileString, mountOptions, mountPath, remote
} from './hostile.ts'

// Hostile requests against the public API: every answer is a 2xx or a 4xx with a stable error
// code (never a 5xx or a crash); a refusal changes nothing in the registry and never reaches
// the agent; whatever is accepted reaches the agent only in canonical, policy-checked form.

const CANARY = 'canary-secret-api-'
const DAV = { url: 'http://127.0.0.1:9/dav', user: 'u', pass: `${CANARY}1` }
const BASE = { path: '/mnt/data', remote: 'dav:x', backend: 'webdav', creds: DAV }
// Independent of src/mounts/paths.ts on purpose: places a sandbox mount must never cover.
const FORBIDDEN_TREES = ['/proc', '/sys', '/dev', '/etc', '/usr', '/bin', '/sbin', '/lib', '/lib64', '/boot', '/run', '/var/lib', '/var/spool', '/var/log', '/root']
const FORBIDDEN_EXACT = ['/', '/home', '/tmp', '/var', '/mnt', '/opt']

type Expect = 'refuse' | 'accept' | 'either'
interface Case { label: string, payload: unknown, expect: Expect, code?: RegExp }

type Res = LightMyRequestResponse

/** JSON with everything outside printable ASCII escaped: labels must not break the TAP stream. */
function show (value: unknown, max = 40): string {
  const text = typeof value === 'string' ? value.slice(0, max) : value
  return (JSON.stringify(text) ?? String(text)).replace(/[^\x20-\x7e]/g, ch => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function isCanonicalPath (p: string): boolean {
  const parts = p.split('/').slice(1)
  // eslint-disable-next-line no-control-regex
  return p.startsWith('/') && !parts.some(s => s === '' || s === '.' || s === '..') && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029\\]|\p{Cs}/u.test(p) &&
    !FORBIDDEN_EXACT.includes(p) && !FORBIDDEN_TREES.some(tree => p === tree || p.startsWith(tree + '/')) && Buffer.byteLength(p) <= 1024
}

/** Escapes what could break a TAP line (line separators, control characters). */
function safe (text: string): string {
  return text.replace(/[^\x20-\x7e\n]/g, ch => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

interface Harness extends TestApp {
  snapshot: () => Promise<string>
  mutatingCalls: () => number
}

async function harness (t: Test): Promise<Harness> {
  const h = await buildTestApp(t)
  await h.registerSandbox('sb1')
  const mutatingCalls = (): number => h.agent.calls.filter(c => c.method !== 'GET').length
  const snapshot = async (): Promise<string> => JSON.stringify({
    mounts: await h.store.listMounts('sb1'),
    sandboxes: await Promise.all((await h.store.listSandboxIds()).sort().map(async id => await h.store.getSandbox(id))),
    creds: await h.store.listCredentials(TENANT_A.tenant),
    agent: mutatingCalls()
  })
  return { ...h, snapshot, mutatingCalls }
}

/** Throws (with the request named) when an answer breaks the API's contract. */
function checkShape (label: string, res: Res): void {
  if (res.statusCode >= 500) throw new Error(`${label}: ${res.statusCode} ${res.body.slice(0, 300)}`)
  if (res.statusCode < 200 || (res.statusCode >= 300 && res.statusCode < 400)) throw new Error(`${label}: unexpected status ${res.statusCode}`)
  if (res.body.includes(CANARY)) throw new Error(`${label}: a secret value came back in the answer`)
  if (res.statusCode >= 400) {
    let body: { error?: { code?: unknown, message?: unknown } }
    try { body = res.json() } catch { throw new Error(`${label}: ${res.statusCode} answer is not JSON: ${res.body.slice(0, 200)}`) }
    if (typeof body.error?.code !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(body.error.code)) throw new Error(`${label}: no error.code in ${res.body.slice(0, 200)}`)
    if (typeof body.error.message !== 'string') throw new Error(`${label}: no error.message`)
  }
}

/** What an accepted mount looks like on its way to the agent; then removes it again. */
async function checkAcceptedMount (h: Harness, label: string, res: Res): Promise<void> {
  const m = res.json() as { id: string, path: string, mountOptions: string[] }
  if (!isCanonicalPath(m.path)) throw new Error(`${label}: accepted a non-canonical or forbidden path ${JSON.stringify(m.path)}`)
  const applied = h.agent.mounts.get(m.id)?.request
  if (applied === undefined) throw new Error(`${label}: accepted but the agent has no mount`)
  if (applied.path !== m.path) throw new Error(`${label}: the agent got path ${JSON.stringify(applied.path)}, the registry ${JSON.stringify(m.path)}`)
  const cfg = parseRcloneConfig(applied.config)
  if (cfg.size !== 1 || !cfg.has(applied.section)) throw new Error(`${label}: the config has sections ${JSON.stringify([...cfg.keys()])}`)
  const values = cfg.get(applied.section) as Map<string, string>
  if (canonicalType(values.get('type') ?? '') === undefined) throw new Error(`${label}: type ${JSON.stringify(values.get('type'))} reached the agent`)
  for (const [key, value] of values) {
    if (isRefusedKey(key)) throw new Error(`${label}: refused key ${key} reached the agent`)
    if (/url|endpoint|host/.test(key) && value !== '' && endpointProblem(value) !== undefined) throw new Error(`${label}: ${key} = ${value} reached the agent`)
  }
  if (JSON.stringify(normalizeMountOptions(applied.mountOptions)) !== JSON.stringify(applied.mountOptions)) throw new Error(`${label}: mount options not canonical`)
  for (const flag of applied.mountOptions) {
    if (flag.startsWith('-') && !Object.hasOwn(MOUNT_OPTIONS, flag)) throw new Error(`${label}: flag ${flag} reached the agent`)
  }
  const del = await h.app.inject({ method: 'DELETE', url: `/sandboxes/sb1/mounts/${m.id}`, headers: h.auth(TENANT_A.key) })
  if (del.statusCode !== 204) throw new Error(`${label}: cleanup failed ${del.statusCode}`)
}

async function post (h: Harness, url: string, payload: unknown, headers: Record<string, string> = h.auth(TENANT_A.key)): Promise<Res> {
  if (typeof payload === 'string') return await h.app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': 'application/json' }, payload })
  return await h.app.inject({ method: 'POST', url, headers, payload: payload as object })
}

/** Runs one request; refusals must leave everything as it was. Returns the answer. */
async function judged (t: Test, h: Harness, c: Case, send: () => Promise<Res>, accepted?: (res: Res) => Promise<void>): Promise<Res> {
  const before = await h.snapshot()
  const res = await send()
  try {
    checkShape(c.label, res)
    if (res.statusCode >= 400) {
      if (await h.snapshot() !== before) throw new Error(`${c.label}: refused with ${res.statusCode} but the registry or the agent changed`)
    } else if (accepted !== undefined) {
      await accepted(res)
    }
    t.pass(`${c.label}: ${res.statusCode} ${res.statusCode >= 400 ? (res.json() as { error: { code: string } }).error.code : ''}`)
  } catch (err) {
    t.fail(safe((err as Error).message))
  }
  if (c.expect === 'refuse') {
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${c.label}: refused`)
    if (c.code !== undefined && res.statusCode >= 400) t.match((res.json() as { error: { code: string } }).error.code, c.code, `${c.label}: code`)
  }
  if (c.expect === 'accept') t.ok(res.statusCode < 300, `${c.label}: accepted (${res.body.slice(0, 200)})`)
  return res
}

function mountCases (): Case[] {
  const cases: Case[] = []
  const refuse = (label: string, payload: unknown, code?: RegExp): void => { cases.push({ label, payload, expect: 'refuse', code }) }
  const accept = (label: string, payload: unknown): void => { cases.push({ label, payload, expect: 'accept' }) }
  const either = (label: string, payload: unknown): void => { cases.push({ label, payload, expect: 'either' }) }

  // path
  for (const p of ['/mnt/./a', '//mnt//a/', '/mnt/%2e%2e/etc', '/mnt/...', '/mnt/a/.', '/tmp/x', '/home/sandbox/data']) accept(`path ${show(p)}`, { ...BASE, path: p })
  for (const p of ['/mnt/a/../../etc', '/mnt/..', '/mnt/a\u0000b', '/mnt/a\nb', '/mnt/a\u2028', '/mnt/a\\..\\..\\etc', 'mnt/a', ' /mnt/a', '/etc', '/etc/cron.d',
    '/proc/self', '/dev/shm/x', '/run/x', '/sys/kernel', '/usr/local/bin', '/var/lib/x', '/var/spool/cron', '/boot/x', '/', '/tmp', '/home', '/mnt',
    '/root', '/mnt/' + 'a'.repeat(256), '/mnt/' + '😀'.repeat(100), '/mnt/' + ('a'.repeat(200) + '/').repeat(6), '/mnt/\ud800', '/mnt/a\udfff']) {
    refuse(`path ${show(p)}`, { ...BASE, path: p }, /INVALID_PATH|VALIDATION_FAILED/)
  }
  for (const p of PATH_TRICKS) either(`path trick ${show(p)}`, { ...BASE, path: p })
  for (const v of [123, null, [], {}, true]) refuse(`path ${show(v)}`, { ...BASE, path: v }, /VALIDATION_FAILED/)

  // remote
  for (const r of [':webdav:x', ':webdav,url=http://169.254.169.254:x', 'dav,env_auth=true:x', 'dav', ':', 'dav:\n', '-dav:x', 'd@v:x', 'd+v:x', 'dav :x', ' dav:x',
    'a'.repeat(65) + ':x', 'dav:x\u0000', '\u202edav:x']) refuse(`remote ${show(r)}`, { ...BASE, remote: r }, /INVALID_REMOTE|VALIDATION_FAILED/)
  for (const r of ['dav:../../etc', 'dav:/etc/passwd', 'local:/etc', '__proto__:x', 'constructor:x', 'dav.x:y', 'dav x:y']) accept(`remote ${show(r)}`, { ...BASE, remote: r })
  for (const r of REMOTE_TRICKS) either(`remote trick ${show(r)}`, { ...BASE, remote: r })

  // backend
  for (const b of ['local', 'alias', 'crypt', 'union', 'http', 'memory', '__proto__', 'constructor', 'S3', 'gcs ', 'google cloud storage', '', 5, null]) {
    refuse(`backend ${show(b)}`, { ...BASE, backend: b }, /VALIDATION_FAILED/)
  }

  // typed creds
  const creds = (c: Record<string, unknown>, backend = 'webdav'): unknown => ({ ...BASE, backend, creds: c })
  for (const key of HOSTILE_KEYS) refuse(`creds key ${show(key)}`, creds({ ...DAV, [key]: 'x' }), /INVALID_CREDENTIALS|VALIDATION_FAILED/)
  refuse('creds __proto__ (raw JSON)', '{"path":"/mnt/data","remote":"dav:x","backend":"webdav","creds":{"url":"http://127.0.0.1:9","__proto__":{"type":"local"}}}', /INVALID_JSON/)
  refuse('body __proto__ (raw JSON)', '{"__proto__":{"rcloneConfig":"[dav]\\ntype = local"},"path":"/mnt/data","remote":"dav:x","backend":"webdav","creds":{"url":"http://127.0.0.1:9"}}', /INVALID_JSON/)
  refuse('body constructor.prototype (raw JSON)', '{"constructor":{"prototype":{"x":1}},"path":"/mnt/data","remote":"dav:x"}', /INVALID_JSON|UNKNOWN_FIELD/)
  for (const [label, value] of [['newline section', 'http://127.0.0.1:1\n[x]\ntype = local'], ['CRLF', 'http://127.0.0.1:1\r\ntype = local'], ['NUL', 'http://127.0.0.1:1\u0000'],
    ['metadata', 'http://169.254.169.254/latest/meta-data'], ['mapped v6', 'http://[::ffff:a9fe:a9fe]/'], ['octal', 'http://0251.0376.0251.0376/'], ['decimal', 'http://2852039166/'],
    ['gce name', 'http://metadata.google.internal./'], ['userinfo', 'http://127.0.0.1:1@169.254.169.254/'], ['backslash', 'http://169.254.169.254\\@127.0.0.1/'],
    ['fe80', 'http://[fe80::1%25eth0]/'], ['substitution', 'http://%(home)s/']] as const) {
    refuse(`creds.url ${label}`, creds({ ...DAV, url: value }), /INVALID_CREDENTIALS|REFUSED_OPTION/)
  }
  for (const [label, c] of [
    ['pass CRLF injection', { ...DAV, pass: `${CANARY}v\r\n[y]\ntype = alias` }], ['user key = v', { ...DAV, user: 'key = v\r\n' }],
    ['pass number', { ...DAV, pass: 123 }], ['bearer substitution', { ...DAV, bearer_token: '%(home)s' }], ['vendor not in enum', { ...DAV, vendor: 'evil' }],
    ['pass too long', { ...DAV, pass: 'x'.repeat(16385) }], ['lone surrogate', { ...DAV, pass: `${CANARY}\ud800` }], ['nested value', { ...DAV, user: { a: 1 } }],
    ['array value', { ...DAV, user: ['a'] }], ['null value', { ...DAV, user: null }], ['65 keys', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']))],
    ['no url', { user: 'u' }]
  ] as const) refuse(`creds ${label}`, creds(c), /INVALID_CREDENTIALS|VALIDATION_FAILED|REFUSED_OPTION/)
  for (const [label, c] of [['backtick pass', { ...DAV, pass: '`' }], ['triple quote pass', { ...DAV, pass: '"""x"""' }], ['spaced user', { ...DAV, user: '  spaced  ' }],
    ['unicode pass', { ...DAV, pass: `${CANARY}😀\u202e\u200b` }], ['# user', { ...DAV, user: '#x' }]] as const) accept(`creds ${label}`, creds(c))
  for (const [label, backend, c] of [
    ['sftp without auth', 'sftp', { host: '127.0.0.1' }], ['sftp key_file', 'sftp', { host: '127.0.0.1', pass: 'p', key_file: '/etc/shadow' }],
    ['sftp metadata host', 'sftp', { host: '169.254.169.254', pass: 'p' }], ['sftp known_hosts', 'sftp', { host: '127.0.0.1', pass: 'p', known_hosts_file: '/dev/null' }],
    ['s3 env_auth', 's3', { env_auth: true }], ['s3 metadata endpoint', 's3', { endpoint: 'http://169.254.169.254' }],
    ['s3 region host', 's3', { region: 'us-east-1.169.254.169.254.nip.io/' }], ['s3 region userinfo', 's3', { region: 'x@169.254.169.254' }],
    ['s3 shared file', 's3', { shared_credentials_file: '/root/.aws/credentials' }], ['gcs nothing', 'gcs', {}], ['gcs anonymous false', 'gcs', { anonymous: false }],
    ['gcs empty token', 'gcs', { token: '{}' }], ['gcs token_uri metadata', 'gcs', { service_account_credentials: '{"type":"service_account","token_uri":"http://169.254.169.254/token"}' }],
    ['gcs service_account_file', 'gcs', { service_account_file: '/etc/gcp.json' }], ['azure metadata endpoint', 'azureblob', { account: 'a', key: 'k', endpoint: '169.254.169.254' }],
    ['azure account host', 'azureblob', { account: '169.254.169.254#', key: 'k' }], ['azure msi', 'azureblob', { use_msi: true }],
    ['dropbox token not json', 'dropbox', { token: 'not json' }], ['dropbox no token', 'dropbox', {}]
  ] as const) refuse(`creds ${label}`, creds(c, backend), /INVALID_CREDENTIALS|REFUSED_OPTION/)

  // raw configs
  const raw = (text: string, r = 'dav:x'): unknown => ({ path: '/mnt/data', remote: r, rcloneConfig: text })
  const okDav = '[dav]\ntype = webdav\nurl = http://127.0.0.1:1\n'
  for (const [label, text, r] of [
    ['type local', '[dav]\ntype = local\n'], ['merged section to local', `${okDav}[dav]\ntype = local\n`], ['colon type', '[dav]\ntype : local\n'],
    ['alias', '[dav]\ntype = alias\nremote = /etc\n'], ['crypt', '[dav]\ntype = crypt\nremote = x:\n'], ['union', '[dav]\ntype = union\nupstreams = /etc\n'],
    ['http', '[dav]\ntype = http\nurl = http://127.0.0.1:1\n'], ['bearer_token_command', `${okDav}bearer_token_command = id\n`], ['s3 env_auth', '[dav]\ntype = s3\nenv_auth = true\n'],
    ['s3 profile', '[dav]\ntype = s3\nprofile = x\n'], ['s3 shared file', '[dav]\ntype = s3\nshared_credentials_file = /root/.aws/credentials\n'],
    ['sftp key_file', '[dav]\ntype = sftp\nhost = 127.0.0.1\nkey_file = /root/.ssh/id_rsa\n'], ['sftp agent', '[dav]\ntype = sftp\nhost = 127.0.0.1\n'],
    ['sftp plaintext pass', '[dav]\ntype = sftp\nhost = 127.0.0.1\npass = plaintext\n'], ['sftp ssh command', '[dav]\ntype = sftp\nhost = 127.0.0.1\npass = ' + obscure('x') + '\nssh = sh -c id\n'],
    ['gcs default creds', '[dav]\ntype = google cloud storage\n'], ['metadata url', '[dav]\ntype = webdav\nurl = http://169.254.169.254/\n'],
    ['backticked metadata', '[dav]\ntype = webdav\nurl = `http://169.254.169.254/`\n'], ['later url wins', `${okDav}url = http://169.254.169.254/\n`],
    ['NUL', `${okDav}user = a\u0000\n`], ['lone CR', '[dav]\ntype = webdav\nurl = http://127.0.0.1:1\rtype = local\n'], ['encrypted', 'RCLONE_ENCRYPT_V0:\nabc\n'],
    ['substitution', '[dav]\ntype = webdav\nurl = %(x)s\n'], ['inherited local', '[dav]\ntype = local\n[dav.x]\nurl = http://127.0.0.1:1\n', 'dav.x:y'],
    ['dotted key', `${okDav}dav.x = 1\n`], ['global key', `${okDav}global.x = 1\n`], ['override key', `${okDav}override.url = http://169.254.169.254\n`],
    ['quoted key', `${okDav}"url" = http://169.254.169.254\n`], ['auto-number key', `${okDav}- = x\n`], ['trimmed section merge', `${okDav}[dav ]\ntype = local\n`],
    ['key outside section', `type = local\n${okDav}`], ['no section', 'nope\n'], ['missing section', okDav, 'other:x'], ['no type', '[dav]\nurl = http://127.0.0.1:1\n'],
    ['revealed pass with newline', `${okDav}pass = ${obscure('x\n[y]\ntype = local')}\n`], ['unterminated backtick', `${okDav}user = \`abc\n`], ['bad header', '[dav\ntype = webdav\n'],
    ['hdfs', '[dav]\ntype = hdfs\nnamenode = 127.0.0.1:1\n'], ['cache', '[dav]\ntype = cache\nremote = /\n'], ['password_command', `${okDav}password_command = id\n`]
  ] as const) refuse(`rcloneConfig ${label}`, raw(text, r), /INVALID_RCLONE_CONFIG|REFUSED_OPTION|INVALID_REMOTE/)
  for (const [label, text] of [['other sections dropped', `${okDav}\n[x]\ntype = local\n`], ['CRLF lines', okDav.replaceAll('\n', '\r\n')], ['indented', '[dav]\n\ttype = webdav\n url = http://127.0.0.1:1\n'],
    ['BOM', '\ufeff' + okDav], ['comments', `# [x]\n; type = local\n${okDav}`], ['obscured pass', `${okDav}pass = ${obscure(`${CANARY}raw`)}\n`]] as const) accept(`rcloneConfig ${label}`, raw(text))
  refuse('rcloneConfig with backend', { ...BASE, rcloneConfig: okDav }, /VALIDATION_FAILED/)
  refuse('rcloneConfig too long', raw('#'.repeat(65537)), /VALIDATION_FAILED/)

  // mount options
  const accepted = new Set(['["--dir-cache-time=1m"]', '["--vfs-cache-mode","full"]', '["--no-modtime"]', '["--umask=022"]'])
  for (const opts of MOUNT_OPTION_TRICKS) {
    const payload = { ...BASE, mountOptions: opts }
    if (accepted.has(JSON.stringify(opts))) accept(`mountOptions ${show(opts)}`, payload)
    else refuse(`mountOptions ${show(opts)}`, payload, /REFUSED_MOUNT_OPTION|VALIDATION_FAILED/)
  }
  for (const v of ['--daemon', null, 5, [1], [null], Array.from({ length: 65 }, () => '--no-modtime'), ['x'.repeat(257)]]) {
    refuse(`mountOptions ${show(v)}`, { ...BASE, mountOptions: v }, /VALIDATION_FAILED/)
  }

  // other fields
  for (const v of ['true', 1, null, [], {}]) refuse(`readWrite ${show(v)}`, { ...BASE, readWrite: v }, /VALIDATION_FAILED/)
  for (const extra of ['color', 'config', 'mountOpt', 'uid', 'id', 'status', 'sandboxId', 'toString']) refuse(`unknown field ${extra}`, { ...BASE, [extra]: 0 }, /UNKNOWN_FIELD/)
  for (const ref of ['../x', '__proto__', 'constructor', 'toString', 'x'.repeat(129), '', 'a\nb', '%2e%2e']) {
    refuse(`credentialsRef ${show(ref, 20)}`, { path: '/mnt/data', remote: 'dav:x', credentialsRef: ref }, /CREDENTIAL_NOT_FOUND|VALIDATION_FAILED/)
  }
  refuse('creds and credentialsRef', { ...BASE, credentialsRef: 'x' }, /VALIDATION_FAILED/)
  for (const text of ['', '{', '[]', 'null', '1', '"x"', '{"path":"/mnt/a","path":"/etc"}', '{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}', '\u0000']) {
    refuse(`raw body ${show(text, 20)}`, text, /INVALID_JSON|VALIDATION_FAILED|UNKNOWN_FIELD|INVALID_PATH/)
  }
  return cases
}

t.test('corpus: POST /sandboxes/:id/mounts', async t => {
  const h = await harness(t)
  for (const c of mountCases()) {
    await judged(t, h, c, async () => await post(h, '/sandboxes/sb1/mounts', c.payload), async res => await checkAcceptedMount(h, c.label, res))
  }
  t.same(await h.store.listMounts('sb1'), [], 'every accepted mount was removed again')
  t.notOk(h.logs.join('\n').includes(CANARY), 'no secret value in the log')
})

t.test('corpus: params, query strings, headers, DELETE ?path=', async t => {
  const h = await harness(t)
  const a = h.auth(TENANT_A.key)
  const added = await post(h, '/sandboxes/sb1/mounts', BASE)
  t.equal(added.statusCode, 201)
  const id = added.json().id as string
  const requests: Array<{ label: string, method: 'GET' | 'DELETE' | 'POST' | 'PUT', url: string, headers?: Record<string, string>, payload?: unknown }> = []
  for (const sb of ['%2e%2e', '.', '..', '.hidden', 'a%2Fb', 'a%00b', '%ff', '%E0%A4%A', 'x'.repeat(129), 'x'.repeat(300), 'sb1%20', '%F0%9F%98%80', 'sb1;x', 'sb1%0A', '__proto__', 'constructor']) {
    requests.push({ label: `GET sandboxId ${sb.slice(0, 20)}`, method: 'GET', url: `/sandboxes/${sb}/mounts` })
    requests.push({ label: `POST sandboxId ${sb.slice(0, 20)}`, method: 'POST', url: `/sandboxes/${sb}/mounts`, payload: BASE })
  }
  for (const mid of ['%2e%2e', 'mnt_x%2F..', 'x'.repeat(65), '%00', '__proto__', 'constructor', 'reconcile', `${id}%0A`, `${id}%20`]) {
    requests.push({ label: `GET mountId ${mid.slice(0, 20)}`, method: 'GET', url: `/sandboxes/sb1/mounts/${mid}` })
    requests.push({ label: `DELETE mountId ${mid.slice(0, 20)}`, method: 'DELETE', url: `/sandboxes/sb1/mounts/${mid}` })
    requests.push({ label: `PUT mount creds ${mid.slice(0, 20)}`, method: 'PUT', url: `/sandboxes/sb1/mounts/${mid}/credentials`, payload: { creds: DAV } })
  }
  for (const q of ['refresh=maybe', '__proto__=1', 'refresh=true&refresh=false', '%=', 'refresh[]=1', 'constructor=1&toString=2', 'refresh=' + 'x'.repeat(5000), 'a=%ff', 'refresh=%00']) {
    requests.push({ label: `GET ?${q.slice(0, 30)}`, method: 'GET', url: `/sandboxes/sb1/mounts?${q}` })
  }
  for (const q of ['path=/mnt/a&path=/mnt/b', 'path=', 'path=%2e%2e', 'path=/mnt/data/../../etc', 'path=/mnt/%00', 'force=yes&path=/mnt/data', 'path=/mnt/data&force=1&force=0',
    'path=%2Fmnt%2Fdata%2F..%2F..%2Fetc', 'path=//mnt//x/', 'path=/mnt/x%0A', 'path=' + '/a'.repeat(600), 'path=/mnt/data&x=1', 'path[]=/mnt/data', 'path=/mnt/%ff']) {
    requests.push({ label: `DELETE ?${q.slice(0, 40)}`, method: 'DELETE', url: `/sandboxes/sb1/mounts?${q}` })
  }
  requests.push({ label: 'DELETE without path', method: 'DELETE', url: '/sandboxes/sb1/mounts' })
  for (const key of ['a b', 'x'.repeat(256), 'é', '\u0001', '']) {
    requests.push({ label: `Idempotency-Key ${show(key, 10)}`, method: 'POST', url: '/sandboxes/sb1/mounts', headers: { 'idempotency-key': key }, payload: { ...BASE, path: '/mnt/idem' } })
  }
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/xml', 'application/jsonx']) {
    requests.push({ label: `content-type ${ct}`, method: 'POST', url: '/sandboxes/sb1/mounts', headers: { 'content-type': ct }, payload: JSON.stringify({ ...BASE, path: '/mnt/ct' }) })
  }
  for (const header of ['Bearer  ' + TENANT_A.key + '  ', 'bearer ' + TENANT_A.key, 'Bearer ' + TENANT_A.key + ' extra', 'Bearer', 'Bearer ' + 'x'.repeat(10000)]) {
    requests.push({ label: `authorization ${header.slice(0, 14)}…`, method: 'GET', url: '/sandboxes/sb1/mounts', headers: { authorization: header } })
  }
  for (const r of requests) {
    const c: Case = { label: r.label, payload: r.payload, expect: 'either' }
    const res = await judged(t, h, c, async () => {
      const headers = { ...a, ...r.headers }
      const payload = r.payload === undefined ? {} : typeof r.payload === 'string' ? { payload: r.payload } : { payload: r.payload as object }
      return await h.app.inject({ method: r.method, url: r.url, headers, ...payload })
    }, async res => {
      if (r.method === 'POST' && res.statusCode === 201) await checkAcceptedMount(h, r.label, res)
    })
    if (r.method === 'DELETE' && res.statusCode === 204) t.fail(`${r.label}: a hostile DELETE removed a mount`)
  }
  const left = await h.store.listMounts('sb1')
  t.same(left.map(m => m.id), [id], 'the one real mount is still there, untouched')
  t.equal(h.agent.mounts.size, 1)
})

t.test('corpus: PUT /internal/sandboxes/:id, POST/PUT/DELETE /credentials', async t => {
  const h = await harness(t)
  const internal = h.auth(INTERNAL_TOKEN)
  const a = h.auth(TENANT_A.key)
  const reg = { tenant: TENANT_A.tenant, agentUrl: h.agent.url, agentToken: h.agent.token }
  const cases: Array<Case & { method: 'PUT' | 'POST' | 'DELETE', url: string, headers: Record<string, string> }> = []
  const put = (label: string, id: string, payload: unknown, expect: Expect, code?: RegExp): void => { cases.push({ label, method: 'PUT', url: `/internal/sandboxes/${id}`, headers: internal, payload, expect, code }) }
  for (const id of ['%2e%2e', '.', '.hidden', 'a%2Fb', 'a%00b', 'x'.repeat(129), '%ff', 'sb%0A1', '-x']) put(`register id ${id.slice(0, 20)}`, id, reg, 'refuse')
  for (const tenant of ['', 'a b', '../x', 'x'.repeat(65), 'é', 'a\nb', 5, null]) put(`register tenant ${show(tenant)}`, 'sbt', { ...reg, tenant }, 'refuse', /VALIDATION_FAILED/)
  for (const url of ['file:///etc/passwd', 'javascript:alert(1)', 'http://x y', 'http://127.0.0.1:1/\n', 'ftp://127.0.0.1/', 'http:/x', '//127.0.0.1:1', 'x'.repeat(2049)]) {
    put(`register agentUrl ${show(url, 30)}`, 'sbt', { ...reg, agentUrl: url }, 'refuse', /VALIDATION_FAILED/)
  }
  for (const token of ['short', 'x'.repeat(1025), 'a'.repeat(20) + '\n', 'a'.repeat(20) + '\r\nX-Evil: 1', ' '.repeat(20), 'é'.repeat(20), 'a'.repeat(20) + '\u0000']) {
    put(`register agentToken ${show(token.slice(-12))}`, 'sbt', { ...reg, agentToken: token }, 'refuse', /VALIDATION_FAILED/)
  }
  put('register unknown field', 'sbt', { ...reg, state: 'hibernated' }, 'refuse', /UNKNOWN_FIELD/)
  put('register __proto__', 'sbt', `{"tenant":"acme","agentUrl":"${h.agent.url}","agentToken":"${h.agent.token}","__proto__":{"x":1}}`, 'refuse', /INVALID_JSON/)

  const cred = (label: string, payload: unknown, expect: Expect, code?: RegExp, query = ''): void => { cases.push({ label, method: 'POST', url: `/credentials${query}`, headers: a, payload, expect, code }) }
  for (const name of ['../x', '', '.x', 'a b', '__proto__', 'x'.repeat(129), 'a/b', 'a\nb', 5]) cred(`credential name ${show(name)}`, { name, backend: 'webdav', creds: DAV }, 'refuse', /VALIDATION_FAILED/)
  for (const backend of ['local', 'alias', '__proto__', 'custom']) cred(`credential backend ${backend}`, { name: 'n1', backend, creds: DAV }, 'refuse', /VALIDATION_FAILED/)
  for (const key of HOSTILE_KEYS) cred(`credential key ${show(key)}`, { name: 'n1', backend: 'webdav', creds: { ...DAV, [key]: 'x' } }, 'refuse', /INVALID_CREDENTIALS|VALIDATION_FAILED/)
  for (const value of ['http://169.254.169.254/', 'http://127.0.0.1:1\n[x]\ntype = local', '%(home)s']) cred(`credential url ${show(value, 30)}`, { name: 'n1', backend: 'webdav', creds: { ...DAV, url: value } }, 'refuse', /INVALID_CREDENTIALS|REFUSED_OPTION/)
  cred('credential ?tenant twice', { name: 'n1', backend: 'webdav', creds: DAV }, 'refuse', /VALIDATION_FAILED/, '?tenant=a&tenant=b')
  cred('credential ?tenant too long', { name: 'n1', backend: 'webdav', creds: DAV }, 'refuse', /VALIDATION_FAILED/, `?tenant=${'x'.repeat(65)}`)
  cred('credential extra field', { name: 'n1', backend: 'webdav', creds: DAV, secret: 'x' }, 'refuse', /UNKNOWN_FIELD/)
  cred('credential constructor name', { name: 'constructor', backend: 'webdav', creds: DAV }, 'accept')

  for (const name of ['%2e%2e', 'a%2Fb', '__proto__', 'toString', 'nope', 'x'.repeat(129), '%00']) {
    cases.push({ label: `rotate ${name.slice(0, 20)}`, method: 'PUT' as const, url: `/credentials/${name}`, headers: a, payload: { creds: DAV }, expect: 'refuse' })
    cases.push({ label: `delete ${name.slice(0, 20)}`, method: 'DELETE', url: `/credentials/${name}`, headers: a, payload: undefined, expect: 'refuse' })
  }
  for (const c of cases) {
    await judged(t, h, c, async () => {
      const payload = c.payload === undefined ? {} : typeof c.payload === 'string' ? { payload: c.payload, headers: { ...c.headers, 'content-type': 'application/json' } } : { payload: c.payload as object }
      return await h.app.inject({ method: c.method, url: c.url, headers: c.headers, ...payload })
    })
  }
  const rotateHostile = await h.app.inject({ method: 'PUT', url: '/credentials/constructor', headers: a, payload: { creds: { ...DAV, url: 'http://169.254.169.254/' } } })
  t.equal(rotateHostile.statusCode, 400, 'rotation is held to the same policy')
  t.notOk(h.logs.join('\n').includes(CANARY), 'no secret value in the log')
})

// ---- properties --------------------------------------------------------------------------

const SECRET_KEYS = new Set(['pass', 'bearer_token', 'secret_access_key', 'session_token', 'key', 'sas_url', 'token', 'client_secret', 'key_pem', 'key_file_pass', 'service_account_credentials', 'sse_customer_key', 'sse_customer_key_base64'])

function credsArb (): fc.Arbitrary<Record<string, unknown>> {
  const name = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('url', 'user', 'pass', 'vendor', 'bearer_token', 'host', 'port', 'key_pem', 'endpoint', 'provider', 'access_key_id', 'secret_access_key', 'region', 'account', 'key', 'sas_url', 'use_emulator', 'anonymous', 'token', 'service_account_credentials') },
    { weight: 2, arbitrary: fc.constantFrom(...HOSTILE_KEYS) },
    { weight: 1, arbitrary: hostileString(12) }
  )
  return fc.array(fc.tuple(name, fc.boolean()), { maxLength: 6 }).chain(entries => fc.tuple(...entries.map(([k]) => SECRET_KEYS.has(k) ? credValue(CANARY) : credValue('plain-')))
    .map(values => {
      const out: Record<string, unknown> = {}
      entries.forEach(([k], i) => { if (k !== '__proto__') out[k] = values[i] })
      return out
    }))
}

function rawConfigArb (): fc.Arbitrary<string> {
  const line = fc.oneof(
    fc.constantFrom('[dav]', '[x]', '[dav.x]', '[dav ]', 'type = webdav', 'type = local', 'type = s3', 'type = sftp', 'type = alias', 'url = http://127.0.0.1:1',
      'url = http://169.254.169.254/', 'env_auth = true', 'bearer_token_command = id', 'host = 127.0.0.1', `pass = ${obscure(`${CANARY}o`)}`, 'pass = plain',
      '# comment', '; comment', '', 'key_file = /etc/shadow', 'provider = Other', 'endpoint = http://127.0.0.1:9', 'anonymous = true', 'type = google cloud storage'),
    fc.tuple(fc.constantFrom('url', 'type', 'user', 'pass', 'x.y', '"q"', '-', 'endpoint'), fc.constantFrom(' = ', ':', '='), hostileString(20)).map(([k, s, v]) => `${k}${s}${v}`),
    hostileString(30)
  )
  // Half start from a working section, so the extra lines decide the outcome.
  return fc.tuple(fc.boolean(), fc.array(line, { maxLength: 10 }), fc.constantFrom('\n', '\r\n'))
    .map(([valid, lines, eol]) => [...(valid ? ['[dav]', 'type = webdav', 'url = http://127.0.0.1:1'] : []), ...lines].join(eol))
}

function mountBodyArb (): fc.Arbitrary<Record<string, unknown>> {
  return fc.record({
    path: fc.oneof({ weight: 4, arbitrary: mountPath() }, { weight: 1, arbitrary: fc.constantFrom(null, 1, [], {}) }),
    remote: fc.oneof({ weight: 4, arbitrary: remote() }, { weight: 1, arbitrary: fc.constantFrom(null, 1) }),
    backend: fc.oneof(fc.constantFrom(...BACKENDS), hostileString(10), fc.constantFrom(null, 3)),
    creds: fc.oneof({ weight: 4, arbitrary: credsArb() }, { weight: 1, arbitrary: fc.constantFrom(null, 'x', [], 1) }),
    credentialsRef: hostileString(20),
    rcloneConfig: rawConfigArb(),
    readWrite: fc.oneof(fc.boolean(), fc.constantFrom('true', 1, null)),
    mountOptions: mountOptions(),
    extra: fc.constantFrom('color', 'constructor', 'toString', 'config', 'id')
  }, { requiredKeys: [] }).map(({ extra, ...body }) => {
    // Unknown fields show up now and then; most bodies stick to the schema's names.
    if (extra === 'color' && body.readWrite === true) return { ...body, [extra]: 1 }
    return body
  })
}

async function property (t: Test, label: string, arb: fc.Arbitrary<unknown>, numRuns: number, run: (value: unknown) => Promise<void>): Promise<void> {
  const started = Date.now()
  try {
    await fc.assert(fc.asyncProperty(arb, run), { numRuns, endOnFailure: true })
    t.pass(`${label}: ${numRuns} runs in ${Date.now() - started} ms`)
  } catch (err) {
    t.fail(safe(`${label}: ${(err as Error).message.slice(0, 1500)}`))
  }
}

t.test('property: any JSON body for a mount ends in 2xx or 4xx with a code; refusals change nothing', async t => {
  const h = await harness(t)
  const stats = new Map<number, number>()
  const check = async (label: string, send: () => Promise<Res>): Promise<void> => {
    const before = await h.snapshot()
    const res = await send()
    stats.set(res.statusCode, (stats.get(res.statusCode) ?? 0) + 1)
    checkShape(label, res)
    if (res.statusCode >= 400 && await h.snapshot() !== before) throw new Error(`${label}: refused but something changed`)
    if (res.statusCode === 201) await checkAcceptedMount(h, label, res)
    else if (res.statusCode < 300) throw new Error(`${label}: ${res.statusCode} for a body that should have created a mount`)
  }
  await property(t, 'mount bodies', mountBodyArb(), 500, async body => {
    await check(JSON.stringify(body).slice(0, 500), async () => await post(h, '/sandboxes/sb1/mounts', body))
  })
  await property(t, 'near-valid mount bodies', fc.record({
    path: fc.oneof(mountPath(), fc.constant('/mnt/ok')),
    remote: fc.oneof(remote(), fc.constant('dav:x')),
    creds: fc.oneof(fc.constant(DAV), credsArb().map(c => ({ ...DAV, ...c }))),
    mountOptions: fc.oneof(fc.constant([]), mountOptions())
  }).map(b => ({ ...b, backend: 'webdav' })), 300, async body => {
    await check(JSON.stringify(body).slice(0, 500), async () => await post(h, '/sandboxes/sb1/mounts', body))
  })
  await property(t, 'raw configs', fc.record({ rcloneConfig: rawConfigArb(), remote: fc.constantFrom('dav:x', 'dav.x:y', 'x:') }).map(b => ({ path: '/mnt/raw', ...b })), 300, async body => {
    await check(JSON.stringify(body).slice(0, 500), async () => await post(h, '/sandboxes/sb1/mounts', body))
  })
  await property(t, 'arbitrary JSON and bytes', fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string({ unit: 'binary', maxLength: 200 }).map(s => ({ raw: s }))), 200, async value => {
    const payload = value !== null && typeof value === 'object' && 'raw' in value && Object.keys(value).length === 1 ? (value as { raw: string }).raw : JSON.stringify(value)
    await check(`raw ${payload.slice(0, 200)}`, async () => await post(h, '/sandboxes/sb1/mounts', payload))
  })
  t.comment(`statuses seen: ${JSON.stringify(Object.fromEntries([...stats].sort()))}`)
  t.ok((stats.get(201) ?? 0) > 0, 'some bodies were accepted (the generators reach the happy path)')
  t.same(await h.store.listMounts('sb1'), [], 'nothing left behind')
  t.notOk(h.logs.join('\n').includes(CANARY), 'no secret value in the log')
})

t.test('property: credentials and sandbox registration bodies', async t => {
  const h = await harness(t)
  const a = h.auth(TENANT_A.key)
  const internal = h.auth(INTERNAL_TOKEN)
  let created = 0
  await property(t, 'POST /credentials', fc.record({
    name: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), hostileString(20)),
    backend: fc.oneof(fc.constantFrom(...BACKENDS), hostileString(10)),
    creds: credsArb()
  }, { requiredKeys: [] }), 300, async body => {
    const before = await h.snapshot()
    const res = await h.app.inject({ method: 'POST', url: '/credentials', headers: a, payload: body as object })
    checkShape(JSON.stringify(body).slice(0, 300), res)
    if (res.statusCode >= 400 && await h.snapshot() !== before) throw new Error('refused but something changed')
    if (res.statusCode === 201) {
      created++
      const rec = res.json() as Record<string, unknown>
      if ('creds' in rec || JSON.stringify(rec).includes(CANARY)) throw new Error('credential values came back')
      const del = await h.app.inject({ method: 'DELETE', url: `/credentials/${encodeURIComponent(rec.name as string)}`, headers: a })
      if (del.statusCode !== 204) throw new Error(`cleanup ${del.statusCode}`)
    }
  })
  await property(t, 'PUT /internal/sandboxes/:id', fc.record({
    id: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/), hostileString(12)),
    tenant: fc.oneof(fc.constant(TENANT_A.tenant), hostileString(12)),
    agentUrl: fc.oneof(fc.constant(h.agent.url), hostileString(30), fc.webUrl()),
    agentToken: fc.oneof(fc.constant(h.agent.token), hostileString(30), fc.string({ minLength: 16, maxLength: 40 }))
  }), 300, async value => {
    const { id, ...body } = value as { id: string, tenant: string, agentUrl: string, agentToken: string }
    const before = await h.snapshot()
    // encodeURIComponent refuses lone surrogates; such an id goes out as replacement characters.
    const res = await h.app.inject({ method: 'PUT', url: `/internal/sandboxes/${encodeURIComponent(id.replace(/\p{Cs}/gu, '\ufffd'))}`, headers: internal, payload: body })
    checkShape(`${id} ${JSON.stringify(body).slice(0, 300)}`, res)
    if (res.statusCode >= 400 && await h.snapshot() !== before) throw new Error('refused but something changed')
    if (res.statusCode < 300) {
      const rec = res.json() as Record<string, unknown>
      if ('agentToken' in rec || JSON.stringify(rec).includes(body.agentToken)) throw new Error('the agent token came back')
      // A registered token must be usable as an HTTP header value.
      if (!/^[\x21-\x7e]+$/.test(body.agentToken)) throw new Error(`accepted an agent token that cannot be sent as a header: ${JSON.stringify(body.agentToken)}`)
    }
  })
  t.comment(`credentials created along the way: ${created}`)
  t.same(await h.store.listCredentials(TENANT_A.tenant), [], 'nothing left behind')
})
