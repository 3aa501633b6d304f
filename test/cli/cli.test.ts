import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
import { buildTestApp, TENANT_A } from '../helpers/app.ts'
import { buildSdkAndCli } from '../sdk/build.ts'

// The CLI as a user runs it: the built JavaScript in its own process, against the real app
// listening on loopback with the agent double registered as sandbox sb1.

const DAV_SECRET = 'canary-cli-dav-pass-0001'
const S3_SECRET = 'canary-cli-s3-secret-0001'
const ROTATED_SECRET = 'canary-cli-rotated-0002'
const SECRETS = [DAV_SECRET, S3_SECRET, ROTATED_SECRET]

interface Result { code: number | null, stdout: string, stderr: string }

const { app, agent, registerSandbox } = await buildTestApp(t)
const url = await app.listen({ port: 0, host: '127.0.0.1' })
await registerSandbox('sb1')
const built = await buildSdkAndCli(t)
const work = await mkdtemp(path.join(tmpdir(), 'sm-cli-'))
t.teardown(async () => { await rm(work, { recursive: true, force: true }) })
const outputs: string[] = []

function runCli (args: string[], opts: { env?: Record<string, string>, input?: string, command?: string[] } = {}): Promise<Result> {
  const env = { PATH: process.env.PATH ?? '', SANDBOX_MOUNTS_URL: url, SANDBOX_MOUNTS_API_KEY: TENANT_A.key, ...opts.env }
  const [cmd, ...pre] = opts.command ?? [process.execPath, built.cli]
  const child = spawn(cmd, [...pre, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c })
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c })
  child.stdin.end(opts.input ?? '')
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', code => {
      outputs.push(stdout, stderr)
      resolve({ code, stdout, stderr })
    })
  })
}

const appliedConfig = (mountId: string): string => agent.mounts.get(mountId)?.request.config ?? ''
const idFrom = (stdout: string): string => /\(id (\S+?),/.exec(stdout)?.[1] ?? ''

t.test('add with --cred from @env: and from stdin (@-), typed by the backend template', async t => {
  const dav = await runCli(['add', 'sb1', '--path', '/mnt/dav', '--remote', 'webdav:', '--backend', 'webdav',
    '--cred', 'url=http://127.0.0.1:9/dav', '--cred', 'user=demo', '--cred', 'pass=@env:DAV_PASS'], { env: { DAV_PASS: DAV_SECRET } })
  t.equal(dav.code, 0, dav.stderr)
  t.match(dav.stdout, /^mounted webdav: at \/mnt\/dav \(id \S+, read-only, mounted\)\n$/)
  t.equal(dav.stderr, '', 'no progress noise when stderr is not a terminal')
  const davConfig = appliedConfig(idFrom(dav.stdout))
  t.match(davConfig, /^user = demo$/m)
  t.match(davConfig, /^pass = \S+$/m)
  t.notOk(davConfig.includes(DAV_SECRET), 'the service obscured the password')

  const s3 = await runCli(['add', 'sb1', '--path', '/mnt/s3', '--remote', 's3:bucket/data', '--backend', 's3',
    '--cred', 'provider=Other', '--cred', 'access_key_id=AKIACLI0001', '--cred', 'secret_access_key=@-',
    '--cred', 'endpoint=http://127.0.0.1:9', '--cred', 'force_path_style=true', '--cred', 'upload_concurrency=4',
    '--read-write', '--opt', '--dir-cache-time 1m', '--opt', '--vfs-cache-mode=writes', '--json'], { input: `${S3_SECRET}\nignored second line\n` })
  t.equal(s3.code, 0, s3.stderr)
  const mount = JSON.parse(s3.stdout)
  t.match(mount, { path: '/mnt/s3', backend: 's3', readWrite: true, status: 'mounted' })
  t.same(mount.mountOptions, ['--dir-cache-time', '1m', '--vfs-cache-mode', 'writes'])
  const s3Config = appliedConfig(mount.id)
  t.match(s3Config, new RegExp(`^secret_access_key = ${S3_SECRET}$`, 'm'), 'exactly the first stdin line')
  t.match(s3Config, /^force_path_style = true$/m)
  t.match(s3Config, /^upload_concurrency = 4$/m)

  const notBool = await runCli(['add', 'sb1', '--path', '/mnt/x', '--remote', 's3:b', '--backend', 's3', '--cred', 'force_path_style=yes'])
  t.equal(notBool.code, 2)
  t.equal(notBool.stderr.split('\n')[0], 'error: USAGE: --cred force_path_style: expects true or false')
  const unset = await runCli(['add', 'sb1', '--path', '/mnt/x', '--remote', 'webdav:', '--backend', 'webdav', '--cred', 'url=http://127.0.0.1:9', '--cred', 'pass=@env:NOT_SET_ANYWHERE'])
  t.equal(unset.code, 2)
  t.match(unset.stderr, /^error: USAGE: --cred pass: environment variable NOT_SET_ANYWHERE is not set\n/)
})

t.test('list as a table and as JSON, get, rm by path and by id', async t => {
  const table = await runCli(['list', 'sb1'])
  t.equal(table.code, 0, table.stderr)
  const lines = table.stdout.trimEnd().split('\n')
  t.match(lines[0], /^ID\s+PATH\s+REMOTE\s+BACKEND\s+MODE\s+STATUS$/)
  t.equal(lines.length, 3)
  t.match(lines.find(l => l.includes('/mnt/dav')), /\/mnt\/dav\s+webdav:\s+webdav\s+ro\s+mounted$/)
  t.match(lines.find(l => l.includes('/mnt/s3')), /\/mnt\/s3\s+s3:bucket\/data\s+s3\s+rw\s+mounted$/)

  const json = await runCli(['list', 'sb1', '--json', '--refresh'])
  t.equal(json.code, 0)
  const mounts = JSON.parse(json.stdout).mounts as Array<{ id: string, path: string }>
  t.same(mounts.map(m => m.path).sort(), ['/mnt/dav', '/mnt/s3'])

  const s3 = mounts.find(m => m.path === '/mnt/s3')!
  agent.setStatus(s3.id, 'degraded', 'AccessDenied: ***')
  const get = await runCli(['get', 'sb1', s3.id])
  t.equal(get.code, 0, get.stderr)
  t.match(get.stdout, new RegExp(`^id:\\s+${s3.id}$`, 'm'))
  t.match(get.stdout, /^status:\s+degraded$/m)
  t.match(get.stdout, /^last error:\s+AccessDenied: \*\*\*$/m)
  t.match(get.stdout, /^options:\s+--dir-cache-time 1m --vfs-cache-mode writes$/m)
  const getJson = await runCli(['get', 'sb1', s3.id, '--json'])
  t.match(JSON.parse(getJson.stdout), { id: s3.id, status: 'degraded' })

  const byPath = await runCli(['rm', 'sb1', '/mnt/dav'])
  t.equal(byPath.code, 0, byPath.stderr)
  t.equal(byPath.stdout, 'removed /mnt/dav\n')
  const byId = await runCli(['rm', 'sb1', s3.id, '--force'])
  t.equal(byId.code, 0, byId.stderr)
  t.equal(agent.mounts.size, 0)
  const empty = await runCli(['list', 'sb1'])
  t.equal(empty.stdout, 'no mounts\n')
})

t.test('a raw rclone config from --config-file', async t => {
  const file = path.join(work, 'rclone.conf')
  await writeFile(file, '[mydav]\ntype = webdav\nurl = http://127.0.0.1:9/raw\nuser = rawuser\n', { mode: 0o600 })
  const res = await runCli(['add', 'sb1', '--path', '/mnt/raw', '--remote', 'mydav:sub', '--config-file', file, '--json'])
  t.equal(res.code, 0, res.stderr)
  const mount = JSON.parse(res.stdout)
  t.match(mount, { path: '/mnt/raw', remote: 'mydav:sub', backend: 'custom' })
  t.match(appliedConfig(mount.id), /^user = rawuser$/m)
  t.equal(agent.mounts.get(mount.id)?.request.root, 'sub')

  const refused = await runCli(['add', 'sb1', '--path', '/mnt/raw2', '--remote', 'x:', '--config-file', '-'], { input: '[x]\ntype = local\n' })
  t.equal(refused.code, 3)
  t.match(refused.stderr, /^error: REFUSED_OPTION: .*type/)
  const both = await runCli(['add', 'sb1', '--path', '/mnt/raw2', '--remote', 'x:', '--config-file', file, '--backend', 's3'])
  t.equal(both.code, 2)
  t.match(both.stderr, /^error: USAGE: --config-file: give either/)
  t.equal((await runCli(['rm', 'sb1', '/mnt/raw'])).code, 0)
})

t.test('refused input and failures: one-line messages and exit codes per class', async t => {
  const webdav = ['--remote', 'webdav:', '--backend', 'webdav', '--cred', 'url=http://127.0.0.1:9']
  const bad = await runCli(['add', 'sb1', '--path', 'relative/dir', ...webdav])
  t.equal(bad.code, 3, 'bad input')
  t.match(bad.stderr, /^error: INVALID_PATH: path\b[^\n]*\n$/)
  t.equal(bad.stdout, '')

  const unknownKey = await runCli(['add', 'sb1', '--path', '/mnt/k', ...webdav, '--cred', 'bearer_token_command=id'])
  t.equal(unknownKey.code, 3)
  t.match(unknownKey.stderr, /^error: INVALID_CREDENTIALS: creds\.bearer_token_command/)

  const usage = await runCli(['add', 'sb1', '--remote', 'webdav:'])
  t.equal(usage.code, 2, 'usage')
  t.match(usage.stderr, /^error: USAGE: --path is required\n/)
  const unknownCmd = await runCli(['frobnicate'])
  t.equal(unknownCmd.code, 2)
  const extra = await runCli(['list', 'sb1', 'surplus-word'])
  t.equal(extra.code, 2)
  t.notMatch(extra.stderr, /surplus-word/, 'a stray word is not echoed (it may be a secret)')

  const missing = await runCli(['get', 'sb1', 'm_nope'])
  t.equal(missing.code, 4, 'not found')
  t.match(missing.stderr, /^error: MOUNT_NOT_FOUND: /)
  t.equal((await runCli(['list', 'no-such-sandbox'])).code, 4)

  t.equal((await runCli(['add', 'sb1', '--path', '/mnt/c', ...webdav])).code, 0)
  const conflict = await runCli(['add', 'sb1', '--path', '/mnt/c', ...webdav, '--read-write'])
  t.equal(conflict.code, 5, 'conflict')
  t.match(conflict.stderr, /^error: MOUNT_PATH_CONFLICT: /)

  agent.failNextApply('PREFLIGHT_FAILED', 'AccessDenied: Access Denied', 'ERROR : webdav: 401 Unauthorized')
  const refused = await runCli(['add', 'sb1', '--path', '/mnt/p', ...webdav])
  t.equal(refused.code, 6, 'remote refused')
  t.match(refused.stderr, /^error: REMOTE_PREFLIGHT_FAILED: [^\n]+\n {2}\| ERROR : webdav: 401 Unauthorized\n$/)

  agent.failNextApply('MOUNT_FAILED', 'rclone exited')
  const failed = await runCli(['add', 'sb1', '--path', '/mnt/p', ...webdav])
  t.equal(failed.code, 7, 'agent failure')

  const badKey = await runCli(['list', 'sb1'], { env: { SANDBOX_MOUNTS_API_KEY: 'not-a-valid-key-000000' } })
  t.equal(badKey.code, 3)
  t.match(badKey.stderr, /^error: UNAUTHORIZED: /)
  const noKey = await runCli(['list', 'sb1'], { env: { SANDBOX_MOUNTS_API_KEY: '' } })
  t.equal(noKey.code, 2)
  t.match(noKey.stderr, /SANDBOX_MOUNTS_API_KEY/)

  const closed = createServer()
  await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise(resolve => closed.close(resolve))
  const down = await runCli(['list', 'sb1', '--url', `http://127.0.0.1:${port}`])
  t.equal(down.code, 7, 'service unavailable')
  t.match(down.stderr, /^error: NETWORK_ERROR: cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)\n$/)

  t.equal((await runCli(['rm', 'sb1', '/mnt/c'])).code, 0)
})

t.test('named credentials: creds add, list, rotate, rm', async t => {
  const add = await runCli(['creds', 'add', 'team-dav', '--backend', 'webdav', '--cred', 'url=http://127.0.0.1:9', '--cred', 'user=team', '--cred', 'pass=@-'], { input: `${DAV_SECRET}\n` })
  t.equal(add.code, 0, add.stderr)
  t.match(add.stdout, /^stored team-dav \(webdav: /)
  const list = await runCli(['creds', 'list'])
  t.match(list.stdout, /^NAME\s+BACKEND\s+KEYS\s+UPDATED\n/)
  t.match(list.stdout, /team-dav\s+webdav\s+\S*pass/)

  const mount = await runCli(['add', 'sb1', '--path', '/mnt/team', '--remote', 'team:', '--credentials-ref', 'team-dav', '--json'])
  t.equal(mount.code, 0, mount.stderr)
  const id = JSON.parse(mount.stdout).id as string
  const inUse = await runCli(['creds', 'rm', 'team-dav'])
  t.equal(inUse.code, 5)
  t.match(inUse.stderr, /^error: CREDENTIAL_IN_USE: /)

  const rotate = await runCli(['creds', 'rotate', 'team-dav', '--cred', 'url=http://127.0.0.1:9', '--cred', 'user=team2', '--cred', 'pass=@env:NEW_PASS'], { env: { NEW_PASS: ROTATED_SECRET } })
  t.equal(rotate.code, 0, rotate.stderr)
  t.match(rotate.stdout, /1 mount\(s\)/)
  t.match(appliedConfig(id), /^user = team2$/m)

  t.equal((await runCli(['rm', 'sb1', '/mnt/team'])).code, 0)
  t.equal((await runCli(['creds', 'rm', 'team-dav'])).code, 0)
  t.equal((await runCli(['creds', 'list'])).stdout, 'no credentials\n')

  const backends = await runCli(['backends', '--json'])
  t.equal(backends.code, 0)
  t.same(JSON.parse(backends.stdout).backends.map((b: { backend: string }) => b.backend).sort(), ['azureblob', 'dropbox', 'gcs', 's3', 'sftp', 'webdav'])
  t.match((await runCli(['backends'])).stdout, /^webdav \(rclone type "webdav"\)/m)
  t.match((await runCli(['--help'])).stdout, /Exit codes: 0 ok/)
})

t.test('a terminal shows progress on stderr while the mount comes up', async t => {
  agent.delayMs = 300
  t.teardown(() => { agent.delayMs = 0 })
  const args = ['add', 'sb1', '--path', '/mnt/tty', '--remote', 'webdav:', '--backend', 'webdav', '--cred', 'url=http://127.0.0.1:9']
  const quoted = [process.execPath, built.cli, ...args].map(a => `'${a}'`).join(' ')
  // script(1) gives the CLI a pseudo-terminal, as an interactive shell would.
  const res = await runCli([], { command: ['script', '-qec', quoted, '/dev/null'] })
  t.equal(res.code, 0, res.stdout)
  t.match(res.stdout, /mounting webdav: at \/mnt\/tty… \d+\.\ds/)
  t.match(res.stdout, /mounted webdav: at \/mnt\/tty/)
  t.equal((await runCli(['rm', 'sb1', '/mnt/tty'])).code, 0)
})

t.test('no secret given to the CLI ever appears in its output', async t => {
  t.ok(outputs.length > 20, 'every invocation was recorded')
  for (const secret of SECRETS) {
    t.notOk(outputs.some(o => o.includes(secret)), `${secret.slice(0, 18)}… never printed`)
  }
  t.notOk(outputs.some(o => o.includes(TENANT_A.key)), 'the API key never printed')
})
