import t from 'tap'
import { execFile } from 'node:child_process'
import { readdir, readFile, lstat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import type { LightMyRequestResponse } from 'fastify'
import { buildE2E } from '../helpers/e2e.ts'
import { INTERNAL_TOKEN, TENANT_A } from '../helpers/app.ts'
import { testStoreOptions } from '../helpers/store.ts'
import { openStore } from '../../src/mounts/store.ts'
import { obscure } from '../../src/rclone/obscure.ts'
import { runAs } from '../helpers/sandbox-user.ts'
import { AZURITE_KEY, freePort, startAzurite, startS3Server, startSftpServer, startWebdavServer } from '../helpers/servers.ts'

// Canary secrets in every credential field of every backend that runs here. After adds, failed
// adds, rotations, error paths and removes, none of them (nor their obscured forms, nor the rc
// daemon's credential) is in either log, rcd's log file, any answer, any process command line,
// the registry file, or any file the sandbox user can read. The sandbox user cannot read the
// agent's config or state, and cannot use the rc endpoint.

const exec = promisify(execFile)

const CANARY = {
  davPass: 'canary-dav-pass-0001',
  davWrong: 'canary-dav-wrong-0002',
  davRotateWrong: 'canary-dav-rotate-0003',
  davRaw: 'canary-dav-raw-0004',
  davNamed: 'canary-dav-named-0005',
  davNamedWrong: 'canary-dav-named-0006',
  davBearer: 'canary-dav-bearer-0007',
  sftpPass: 'canary-sftp-pass-0008',
  sftpWrong: 'canary-sftp-wrong-0009',
  s3Secret: 'canary-s3-secret-0010',
  s3Session: 'canary-s3-session-0011',
  s3Wrong: 'canary-s3-secret-0012',
  azureKey: Buffer.from('canary-azure-key-0013').toString('base64'),
  azureWrong: Buffer.from('canary-azure-wrong-key-0014').toString('base64'),
  gcsKey: 'canary-gcs-private-key-0015'
}

/** Every file below dir (not following symlinks, not entering FUSE mounts). */
async function walk (dir: string, skip: Set<string>): Promise<string[]> {
  const out: string[] = []
  let entries
  try { entries = await readdir(dir, { withFileTypes: true }) } catch { return out }
  for (const e of entries) {
    const full = path.join(dir, e.name)
    if (skip.has(full)) continue
    if (e.isDirectory()) out.push(full, ...await walk(full, skip))
    else out.push(full)
  }
  return out
}

async function fuseMountPoints (): Promise<Set<string>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  return new Set(text.split('\n').filter(l => l.includes(' fuse.rclone ')).map(l => l.split(' ')[4].replace(/\\040/g, ' ')))
}

async function commandLines (): Promise<string> {
  const parts: string[] = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try { parts.push((await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ')) } catch {}
  }
  const { stdout } = await exec('ps', ['-eo', 'args'], { maxBuffer: 16 << 20 })
  return parts.join('\n') + '\n' + stdout
}

t.test('canary secrets never leak: answers, logs, rcd log, command lines, registry, files the sandbox user can read', async t => {
  const webdav = await startWebdavServer({ user: 'alice', pass: CANARY.davPass })
  t.teardown(webdav.stop)
  await writeFile(path.join(webdav.dir, 'f.txt'), 'dav file\n')
  const sftp = await startSftpServer({ password: CANARY.sftpPass })
  t.teardown(sftp.stop)
  const keys = await sftp.generateKeypair()
  await sftp.authorizeKey(keys.publicKey)
  const s3 = await startS3Server({ buckets: ['bucket'] })
  t.teardown(s3.stop)
  const azure = await startAzurite()
  t.teardown(azure.stop)
  await azure.createContainer('box')

  const storeOptions = await testStoreOptions(t, 'sqlite')
  const store = await openStore(storeOptions)
  t.teardown(async () => { await store.close() })
  const e = await buildE2E(t, { sandboxId: 'sec', store, agentEnv: { AGENT_PREFLIGHT_TIMEOUT_MS: '4000' } })
  const h = e.auth(TENANT_A.key)
  const bodies: string[] = []
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: object): Promise<LightMyRequestResponse> => {
    const res = await e.app.inject({ method, url, headers: h, ...(payload === undefined ? {} : { payload }) })
    bodies.push(res.body)
    return res
  }
  const mnt = (name: string): string => path.join(e.root, 'mnt', name)
  const secrets = new Set<string>([...Object.values(CANARY), AZURITE_KEY, keys.keyPem, ...keys.privateKeyPem.split('\n').filter(l => l.length >= 40)])
  /** Obscured forms and the rc credential, read as root from the agent's private files. */
  const harvest = async (): Promise<void> => {
    for (const f of await readdir(e.agentConfig.configDir)) {
      if (f.endsWith('.redact.json')) for (const v of JSON.parse(await readFile(path.join(e.agentConfig.configDir, f), 'utf8')) as string[]) if (v.length >= 8) secrets.add(v)
    }
    try {
      const rcd = JSON.parse(await readFile(path.join(e.agentConfig.stateDir, 'rcd.json'), 'utf8')) as { pass: string }
      secrets.add(rcd.pass)
    } catch {}
  }
  const dav = { url: webdav.url, user: 'alice', vendor: 'other' }
  const sftpBase = { host: sftp.host, port: sftp.port, user: sftp.user }

  // ---- adds that work
  const added: Record<string, string> = {}
  const ok: Array<[string, object]> = [
    ['dav', { path: mnt('dav'), remote: 'dav:', backend: 'webdav', creds: { ...dav, pass: CANARY.davPass } }],
    ['sftp-pass', { path: mnt('sftp-pass'), remote: 'box:', backend: 'sftp', creds: { ...sftpBase, pass: CANARY.sftpPass } }],
    ['sftp-key', { path: mnt('sftp-key'), remote: 'box:', backend: 'sftp', creds: { ...sftpBase, key_pem: keys.privateKeyPem } }],
    ['azure', { path: mnt('azure'), remote: 'az:box', backend: 'azureblob', creds: { account: azure.account, key: AZURITE_KEY, use_emulator: true, endpoint: azure.endpoint } }],
    // The emulators take any key, so these mount with canary secrets in them.
    ['s3', { path: mnt('s3'), remote: 's3:bucket', backend: 's3', creds: { provider: 'Other', endpoint: s3.endpoint, access_key_id: s3.accessKeyId, secret_access_key: CANARY.s3Secret, session_token: CANARY.s3Session, force_path_style: true } }],
    ['azure-canary', { path: mnt('azure-canary'), remote: 'az:box', backend: 'azureblob', creds: { account: azure.account, key: CANARY.azureKey, use_emulator: true, endpoint: azure.endpoint } }],
    ['raw', { path: mnt('raw'), remote: 'raw:', rcloneConfig: `[raw]\ntype = webdav\nurl = ${webdav.url}\nuser = alice\npass = ${obscure(CANARY.davPass)}\nbearer_token = ${CANARY.davBearer}\n` }]
  ]
  secrets.add(CANARY.davRaw)
  const cred = await call('POST', '/credentials', { name: 'team-dav', backend: 'webdav', creds: { ...dav, pass: CANARY.davPass } })
  t.equal(cred.statusCode, 201)
  ok.push(['named', { path: mnt('named'), remote: 'dav:', credentialsRef: 'team-dav' }])
  for (const [name, payload] of ok) {
    const res = await call('POST', '/sandboxes/sec/mounts', payload)
    t.equal(res.statusCode, 201, `${name}: mounted (${res.body.slice(0, 300)})`)
    added[name] = res.json().id
  }
  await harvest()
  t.ok(secrets.size > Object.keys(CANARY).length + 3, `watching ${secrets.size} secret strings, obscured forms included`)

  // ---- adds that fail: the reason reaches the caller, the secrets do not
  const closedPort = await freePort()
  const failing: Array<[string, object]> = [
    ['dav wrong pass', { path: mnt('f-dav'), remote: 'dav:', backend: 'webdav', creds: { ...dav, pass: CANARY.davWrong } }],
    ['sftp wrong pass', { path: mnt('f-sftp'), remote: 'box:', backend: 'sftp', creds: { ...sftpBase, pass: CANARY.sftpWrong } }],
    ['s3 endpoint down', { path: mnt('f-s3'), remote: 's3:bucket', backend: 's3', creds: { provider: 'Other', endpoint: `http://127.0.0.1:${closedPort}`, access_key_id: s3.accessKeyId, secret_access_key: CANARY.s3Wrong, force_path_style: true } }],
    ['azure endpoint down', { path: mnt('f-az'), remote: 'az:box', backend: 'azureblob', creds: { account: azure.account, key: CANARY.azureWrong, use_emulator: true, endpoint: `http://127.0.0.1:${closedPort}/${azure.account}` } }],
    ['gcs unusable key', { path: mnt('f-gcs'), remote: 'gcs:bucket', backend: 'gcs', creds: { service_account_credentials: JSON.stringify({ type: 'service_account', client_email: 'x@y.iam', private_key: `-----BEGIN PRIVATE KEY-----\n${CANARY.gcsKey}\n-----END PRIVATE KEY-----\n`, token_uri: `http://127.0.0.1:${webdav.port}/token` }) } }]
  ]
  for (const [name, payload] of failing) {
    const res = await call('POST', '/sandboxes/sec/mounts', payload)
    t.ok(res.statusCode >= 400 && res.statusCode < 600, `${name}: refused with ${res.statusCode} ${(res.json() as { error?: { code?: string } }).error?.code ?? ''}`)
  }
  t.same((await e.store.listMounts('sec')).length, ok.length, 'no entry left by a failed add')

  // ---- rotations: one that works (password to key), ones that fail
  const rot = await call('PUT', `/sandboxes/sec/mounts/${added['sftp-pass']}/credentials`, { creds: { ...sftpBase, key_pem: keys.privateKeyPem } })
  t.equal(rot.statusCode, 200, `sftp rotated to its key (${rot.body.slice(0, 200)})`)
  const rotBad = await call('PUT', `/sandboxes/sec/mounts/${added.dav}/credentials`, { creds: { ...dav, pass: CANARY.davRotateWrong } })
  t.ok(rotBad.statusCode >= 400, `a rotation to a wrong password is refused (${rotBad.statusCode})`)
  const namedBad = await call('PUT', '/credentials/team-dav', { creds: { ...dav, pass: CANARY.davNamedWrong } })
  t.ok(namedBad.statusCode >= 400, `a named rotation to a wrong password is refused (${namedBad.statusCode})`)
  const namedOk = await call('PUT', '/credentials/team-dav', { creds: { ...dav, pass: CANARY.davPass, bearer_token: CANARY.davNamed } })
  t.equal(namedOk.statusCode, 200, 'a named rotation that works')
  await harvest()

  // ---- error paths: the backend goes away, health and reconciliation report it
  await webdav.stop()
  const degraded = await call('GET', `/sandboxes/sec/mounts/${added.dav}`)
  t.equal(degraded.statusCode, 200)
  t.ok(['degraded', 'failed'].includes(degraded.json().status), `a mount whose backend is gone is ${degraded.json().status as string}`)
  t.ok(typeof degraded.json().lastError === 'string', 'with the reason')
  await call('GET', '/sandboxes/sec/mounts?refresh=true')
  await call('POST', '/sandboxes/sec/mounts/reconcile')

  // ---- the sandbox user: the agent's files, other mounts' configs, the rc endpoint
  const fuse = await fuseMountPoints()
  const files = [...await walk(e.agentConfig.configDir, fuse), ...await walk(e.agentConfig.stateDir, fuse)]
  t.ok(files.some(f => f.endsWith('.conf')), 'the walk sees the mount configs')
  for (const dir of [e.agentConfig.configDir, e.agentConfig.stateDir]) {
    const st = await lstat(dir)
    t.equal(st.uid, 0, `${dir} is root's`)
    t.equal(st.mode & 0o077, 0, `${dir} is closed to group and others (${(st.mode & 0o777).toString(8)})`)
  }
  for (const file of files) {
    const st = await lstat(file)
    if (!st.isFile()) continue
    const res = await runAs('sandbox', ['cat', file])
    t.not(res.code, 0, `the sandbox user cannot read ${path.relative(e.root, file)}`)
  }
  // Everything else under the test root the sandbox user could read holds no secret.
  for (const file of await walk(e.root, new Set([...fuse, e.agentConfig.configDir, e.agentConfig.stateDir]))) {
    const st = await lstat(file)
    if (!st.isFile()) continue
    const text = await readFile(file, 'latin1')
    for (const s of secrets) if (text.includes(s)) t.fail(`${file} holds a secret`)
  }
  const rcd = JSON.parse(await readFile(path.join(e.agentConfig.stateDir, 'rcd.json'), 'utf8')) as { port: number, pid: number, user: string, pass: string }
  // The sandbox user talks to the rc endpoint with node's fetch (no curl needed on the machine).
  const asSandbox = async (pathname: string, body: string, auth?: string): Promise<string> => {
    const script = `fetch(${JSON.stringify(`http://127.0.0.1:${rcd.port}${pathname}`)}, { method: 'POST', headers: { 'content-type': 'application/json'${auth === undefined ? '' : `, authorization: ${JSON.stringify(`Basic ${Buffer.from(auth).toString('base64')}`)}`} }, body: ${JSON.stringify(body)}, signal: AbortSignal.timeout(5000) }).then(r => console.log(r.status), e => console.log('error ' + e.message))`
    return (await runAs('sandbox', [process.execPath, '-e', script])).stdout.trim()
  }
  for (const [label, pathname, body, auth] of [
    ['no credentials', '/rc/noop', '{}', undefined],
    ['core/command without credentials', '/core/command', '{"command":"id"}', undefined],
    ['guessed credentials', '/core/command', '{"command":"id"}', 'agent:agent'],
    ['listing mounts', '/mount/listmounts', '{}', undefined]
  ] as const) {
    const status = await asSandbox(pathname, body, auth)
    t.ok(['401', '403'].includes(status), `rc endpoint, ${label}: ${status}`)
  }
  const environ = await runAs('sandbox', ['cat', `/proc/${rcd.pid}/environ`])
  t.not(environ.code, 0, 'the sandbox user cannot read the daemon\'s environment (where its rc credential lives)')
  const asRoot = await fetch(`http://127.0.0.1:${rcd.port}/rc/noop`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${rcd.user}:${rcd.pass}`).toString('base64')}`, 'content-type': 'application/json' }, body: '{}' })
  t.equal(asRoot.status, 200, 'the rc credential itself works (so the 401s above mean something)')

  // ---- remove everything
  for (const id of Object.values(added)) {
    const res = await call('DELETE', `/sandboxes/sec/mounts/${id}?force=true`)
    t.equal(res.statusCode, 204, `removed ${id}`)
  }
  t.same((await readdir(e.agentConfig.configDir)).filter(f => f.startsWith('mnt_')), [], 'no mount config left behind')

  // ---- where the secrets must not be
  const places: Array<[string, string]> = [
    ['the control plane log', e.logs.join('\n')],
    ['the agent log', e.agentLogs.join('\n')],
    ['rcd\'s log file', await readFile(path.join(e.agentConfig.stateDir, 'rcd.log'), 'utf8').catch(() => '')],
    ['HTTP answers', bodies.join('\n')],
    ['process command lines', await commandLines()]
  ]
  const db = path.join(storeOptions.dataDir, 'registry.db')
  for (const suffix of ['', '-wal']) places.push([`the registry file${suffix}`, await readFile(db + suffix, 'latin1').catch(() => '')])
  t.ok(places[2][1].length > 0, 'rcd wrote a log')
  t.ok(bodies.filter(b => b.includes('REMOTE_PREFLIGHT_FAILED')).length >= 3, 'failures told the caller why')
  for (const [where, text] of places) {
    const found = [...secrets].filter(s => text.includes(s))
    t.same(found.map(s => `${s.slice(0, 6)}…(${s.length})`), [], `no secret in ${where}`)
  }
  // The rc credential is a secret too, but the agent's own private state file holds it by design.
  t.ok(secrets.has(rcd.pass))
  t.equal((await e.app.inject({ method: 'GET', url: '/sandboxes/sec/mounts', headers: e.auth(INTERNAL_TOKEN) })).json().mounts.length, 0)
})
