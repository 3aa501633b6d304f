import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { createRequire } from 'node:module'
import { promisify } from 'node:util'
import { lookupUser } from './sandbox-user.ts'
import { freePort } from '../../src/lib/free-port.ts'

export { freePort }

// Real storage servers on 127.0.0.1 for tests: each one gets a free port and its own temp dir,
// and stop() removes both. Secrets reach the servers through files or the environment, never
// through their command lines.

const exec = promisify(execFile)
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

const BIN = resolve(dirname(new URL(import.meta.url).pathname), '../../node_modules/.bin')

export interface Stoppable {
  stop (): Promise<void>
}

/** The environment an rclone helper process gets: no AWS_*, GOOGLE_*, RCLONE_* from ours. */
export function rcloneEnv (home: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, ...extra }
}

function randomSecret (): string {
  return randomBytes(12).toString('base64url')
}

async function canConnect (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const sock = connect({ host: '127.0.0.1', port })
    sock.once('connect', () => { sock.destroy(); resolve(true) })
    sock.once('error', () => resolve(false))
  })
}

interface Spawned {
  child: ChildProcess
  output: () => string
}

function spawnTracked (cmd: string, args: string[], env: Record<string, string>, cwd?: string): Spawned {
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
  let out = ''
  const keep = (chunk: Buffer): void => { out = (out + chunk.toString()).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return { child, output: () => out }
}

async function waitForPort (port: number, spawned: Spawned, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (spawned.child.exitCode !== null || spawned.child.signalCode !== null) {
      throw new Error(`server exited before listening: ${spawned.output()}`)
    }
    if (await canConnect(port)) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  spawned.child.kill('SIGKILL')
  throw new Error(`server did not listen on ${port} within ${timeoutMs} ms: ${spawned.output()}`)
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** Starts a server on a fresh port, retrying when another process took the port first. */
async function startOnFreePort (start: (port: number) => Spawned | Promise<Spawned>, fixedPort?: number): Promise<{ spawned: Spawned, port: number }> {
  let lastErr: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = fixedPort ?? await freePort()
    const spawned = await start(port)
    try {
      await waitForPort(port, spawned)
      return { spawned, port }
    } catch (err) {
      lastErr = err
      await stopChild(spawned.child)
    }
  }
  throw lastErr
}

// ---------------------------------------------------------------------------------------------
// SFTP: Debian's sshd with its own config, host key and a dedicated local user per server.

export interface SshKeypair {
  publicKey: string
  /** OpenSSH private key with real newlines. */
  privateKeyPem: string
  /** The same key on one line with literal \n, as rclone's sftp `key_pem` wants it. */
  keyPem: string
}

export async function generateSshKeypair (): Promise<SshKeypair> {
  const dir = await mkdtemp(join(tmpdir(), 'sshkey-'))
  try {
    const file = join(dir, 'id')
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test', '-f', file])
    const privateKeyPem = await readFile(file, 'utf8')
    const publicKey = (await readFile(file + '.pub', 'utf8')).trim()
    return { publicKey, privateKeyPem, keyPem: privateKeyPem.trimEnd().split('\n').join('\\n') }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export interface SftpServer extends Stoppable {
  host: string
  port: number
  user: string
  password: string
  /** The user's home directory: rclone's sftp paths without a leading / resolve here. */
  root: string
  authorizeKey (publicKey: string): Promise<void>
  generateKeypair (): Promise<SshKeypair>
}

/** SIGKILLs, by pid, every process running as `uid` (only used for a dedicated test user). */
async function killProcessesOf (uid: number): Promise<void> {
  if (uid === 0) return
  for (let round = 0; round < 20; round++) {
    const pids: number[] = []
    for (const name of await readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue
      const status = await readFile(`/proc/${name}/status`, 'utf8').catch(() => '')
      const m = /^Uid:\s+(\d+)/m.exec(status)
      if (m !== null && Number(m[1]) === uid && !/^State:\s+Z/m.test(status)) pids.push(Number(name))
    }
    if (pids.length === 0) return
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL') } catch {}
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function withUserLock<T> (fn: () => Promise<T>): Promise<T> {
  // useradd/userdel/chpasswd fail while another one holds the /etc/passwd lock: retry
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      const code = (err as { code?: number }).code
      if (attempt >= 30 || (code !== 10 && code !== 8 && code !== 1)) throw err
      await new Promise(resolve => setTimeout(resolve, 100 + Math.random() * 200))
    }
  }
}

export async function startSftpServer (opts: { user?: string, password?: string, authorizedKey?: string } = {}): Promise<SftpServer> {
  const base = await mkdtemp(join(tmpdir(), 'sftp-'))
  await chmod(base, 0o755)
  const root = join(base, 'home')
  await mkdir(root)
  const user = opts.user ?? `sft${randomBytes(5).toString('hex')}`
  const password = opts.password ?? randomSecret()
  let createdUser = false
  let spawned: Spawned | undefined
  const cleanup = async (): Promise<void> => {
    if (spawned !== undefined) await stopChild(spawned.child)
    if (createdUser) {
      // sshd's per-connection processes run as the user and outlive the listener
      const account = await lookupUser(user)
      if (account !== null) await killProcessesOf(account.uid)
      await withUserLock(() => exec('userdel', [user])).catch(() => {})
    }
    await rm(base, { recursive: true, force: true })
  }
  try {
    if (await lookupUser(user) === null) {
      await withUserLock(() => exec('useradd', ['--no-create-home', '--home-dir', root, '--shell', '/usr/sbin/nologin', '--user-group', user]))
      createdUser = true
    }
    await withUserLock(async () => {
      const child = execFile('chpasswd', [])
      child.stdin?.end(`${user}:${password}\n`)
      await new Promise<void>((resolve, reject) => child.once('exit', code => code === 0 ? resolve() : reject(Object.assign(new Error('chpasswd failed'), { code }))))
    })
    const account = await lookupUser(user)
    if (account === null) throw new Error(`user ${user} missing after useradd`)
    await chown(root, account.uid, account.gid)
    await chmod(root, 0o755)
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 })
    await exec('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(base, 'host_key')])
    const authorizedKeys = join(base, 'authorized_keys')
    await writeFile(authorizedKeys, opts.authorizedKey === undefined ? '' : opts.authorizedKey.trim() + '\n', { mode: 0o644 })
    const started = await startOnFreePort(async port => {
      const config = [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${join(base, 'host_key')}`,
        `PidFile ${join(base, 'sshd.pid')}`,
        `AuthorizedKeysFile ${authorizedKeys}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'PermitRootLogin no',
        `AllowUsers ${user}`,
        'Subsystem sftp internal-sftp',
        'ForceCommand internal-sftp',
        'LogLevel ERROR',
        ''
      ].join('\n')
      const file = join(base, `sshd_config.${port}`)
      await writeFile(file, config, { mode: 0o600 })
      return spawnTracked('/usr/sbin/sshd', ['-D', '-e', '-f', file], { PATH: '/usr/sbin:/usr/bin:/bin' })
    })
    spawned = started.spawned
    return {
      host: '127.0.0.1',
      port: started.port,
      user,
      password,
      root,
      authorizeKey: async (publicKey: string) => {
        await writeFile(authorizedKeys, publicKey.trim() + '\n', { flag: 'a' })
      },
      generateKeypair: generateSshKeypair,
      stop: cleanup
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// WebDAV: `rclone serve webdav`; the password travels in RCLONE_PASS.

export interface WebdavServer extends Stoppable {
  url: string
  port: number
  dir: string
  user: string
  pass: string
}

export async function startWebdavServer (opts: { user?: string, pass?: string, port?: number, dir?: string } = {}): Promise<WebdavServer> {
  const base = await mkdtemp(join(tmpdir(), 'webdav-'))
  const ownDir = opts.dir === undefined
  const dir = opts.dir ?? join(base, 'data')
  await mkdir(dir, { recursive: true })
  const home = join(base, 'home')
  await mkdir(home)
  const emptyConfig = join(base, 'rclone.conf')
  await writeFile(emptyConfig, '', { mode: 0o600 })
  const user = opts.user ?? 'user'
  const pass = opts.pass ?? randomSecret()
  try {
    const { spawned, port } = await startOnFreePort(p => spawnTracked('rclone', [
      'serve', 'webdav', dir, '--addr', `127.0.0.1:${p}`, '--user', user,
      '--config', emptyConfig, '--dir-cache-time', '0s', '--poll-interval', '0'
    ], rcloneEnv(home, { RCLONE_PASS: pass })), opts.port)
    return {
      url: `http://127.0.0.1:${port}`,
      port,
      dir,
      user,
      pass,
      stop: async () => {
        await stopChild(spawned.child)
        await rm(base, { recursive: true, force: true })
        if (ownDir) await rm(dir, { recursive: true, force: true })
      }
    }
  } catch (err) {
    await rm(base, { recursive: true, force: true })
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// S3: the s3rver package in this process. Objects land in <dir>/<bucket>/<key>._S3rver_object.

export interface S3Server extends Stoppable {
  endpoint: string
  port: number
  dir: string
  accessKeyId: string
  secretAccessKey: string
  /** Where s3rver keeps an object's bytes. */
  objectPath (bucket: string, key: string): string
  readObject (bucket: string, key: string): Promise<Buffer | null>
}

// s3rver ships no type declarations: describe the part used here
interface S3rverInstance {
  run (): Promise<{ port: number }>
  close (): Promise<void>
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor

export async function startS3Server (opts: { buckets?: string[] } = {}): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), 's3rver-'))
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: dir,
    configureBuckets: (opts.buckets ?? []).map(name => ({ name }))
  })
  let port: number
  try {
    const addr = await server.run()
    port = addr.port
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const objectPath = (bucket: string, key: string): string => join(dir, bucket, `${key}._S3rver_object`)
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    dir,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    objectPath,
    readObject: async (bucket, key) => await readFile(objectPath(bucket, key)).catch(() => null),
    stop: async () => {
      await server.close().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Azure Blob: azurite-blob as a child process, no telemetry.

/** Azurite's published development account key (not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1'
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

export interface AzuriteServer extends Stoppable {
  endpoint: string
  port: number
  dir: string
  account: string
  key: string
  /** rclone config section (canonical INI) that reaches this emulator. */
  rcloneSection (name: string): string
  createContainer (name: string): Promise<void>
}

export async function startAzurite (): Promise<AzuriteServer> {
  const dir = await mkdtemp(join(tmpdir(), 'azurite-'))
  try {
    const { spawned, port } = await startOnFreePort(p => spawnTracked(join(BIN, 'azurite-blob'), [
      '--blobHost', '127.0.0.1', '--blobPort', String(p), '-l', dir,
      '--skipApiVersionCheck', '--disableTelemetry', '--silent', '--loose', '--disableProductStyleUrl'
    ], { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, dir))
    const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`
    const rcloneSection = (name: string): string => [
      `[${name}]`, 'type = azureblob', `account = ${AZURITE_ACCOUNT}`, `key = ${AZURITE_KEY}`,
      'use_emulator = true', `endpoint = ${endpoint}`, ''
    ].join('\n')
    return {
      endpoint,
      port,
      dir,
      account: AZURITE_ACCOUNT,
      key: AZURITE_KEY,
      rcloneSection,
      createContainer: async (name: string) => {
        await runRclone(rcloneSection('az'), ['mkdir', `az:${name}`])
      },
      stop: async () => {
        await stopChild(spawned.child)
        await rm(dir, { recursive: true, force: true })
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

/** Runs rclone with `config` in a private 0600 file and a minimal environment. */
export async function runRclone (config: string, args: string[], timeoutMs = 30_000): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rclone-run-'))
  try {
    const file = join(dir, 'rclone.conf')
    await writeFile(file, config, { mode: 0o600 })
    const { stdout } = await exec('rclone', ['--config', file, ...args], { env: rcloneEnv(dir), timeout: timeoutMs, encoding: 'utf8' })
    return stdout
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// GCS: no emulator exists here, so a small JSON-API server (objects list/get, media download)
// serves <dir>/<bucket>/<key> read-only. Enough for rclone's gcs backend with anonymous = true.

export interface GcsFake extends Stoppable {
  /** Value for rclone's gcs `endpoint` key. */
  endpoint: string
  port: number
  dir: string
  putObject (bucket: string, key: string, data: string | Buffer): Promise<void>
}

interface GcsObject {
  name: string
  size: number
  mtime: Date
  md5: string
}

async function walk (root: string, dir = root): Promise<GcsObject[]> {
  const out: GcsObject[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name)
    if (entry.isDirectory()) {
      out.push(...await walk(root, full))
    } else if (entry.isFile()) {
      const st = await stat(full)
      const md5 = createHash('md5').update(await readFile(full)).digest('base64')
      out.push({ name: relative(root, full).split(sep).join('/'), size: st.size, mtime: st.mtime, md5 })
    }
  }
  return out
}

export async function startGcsFake (opts: { buckets?: string[] } = {}): Promise<GcsFake> {
  const dir = await mkdtemp(join(tmpdir(), 'gcsfake-'))
  for (const bucket of opts.buckets ?? []) await mkdir(join(dir, bucket))
  let base = ''
  const bucketDir = (bucket: string): string | null => {
    const full = resolve(dir, bucket)
    return full.startsWith(dir + sep) && !bucket.includes('/') ? full : null
  }
  const resource = (bucket: string, o: GcsObject): Record<string, unknown> => ({
    kind: 'storage#object',
    id: `${bucket}/${o.name}/1`,
    name: o.name,
    bucket,
    generation: '1',
    metageneration: '1',
    contentType: 'application/octet-stream',
    size: String(o.size),
    md5Hash: o.md5,
    updated: o.mtime.toISOString(),
    timeCreated: o.mtime.toISOString(),
    mediaLink: `${base}/download/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(o.name)}?alt=media`
  })
  const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const notFound = (res: ServerResponse): void => sendJson(res, 404, { error: { code: 404, message: 'Not Found', errors: [{ reason: 'notFound', message: 'Not Found' }] } })

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', base)
    const m = /^\/(download\/)?storage\/v1\/b\/([^/]+)(?:\/o(?:\/(.+))?)?$/.exec(url.pathname)
    if (req.method !== 'GET' || m === null) return notFound(res)
    const bucket = decodeURIComponent(m[2])
    const bdir = bucketDir(bucket)
    if (bdir === null || !(await stat(bdir).then(s => s.isDirectory(), () => false))) return notFound(res)
    const objects = await walk(bdir)
    if (m[3] === undefined && !url.pathname.endsWith('/o')) {
      return sendJson(res, 200, { kind: 'storage#bucket', id: bucket, name: bucket, location: 'US', storageClass: 'STANDARD' })
    }
    if (m[3] === undefined) {
      const prefix = url.searchParams.get('prefix') ?? ''
      const delimiter = url.searchParams.get('delimiter') ?? ''
      const items: Record<string, unknown>[] = []
      const prefixes = new Set<string>()
      for (const o of objects.sort((a, b) => a.name < b.name ? -1 : 1)) {
        if (!o.name.startsWith(prefix)) continue
        const rest = o.name.slice(prefix.length)
        const cut = delimiter === '' ? -1 : rest.indexOf(delimiter)
        if (cut !== -1) prefixes.add(prefix + rest.slice(0, cut + delimiter.length))
        else items.push(resource(bucket, o))
      }
      return sendJson(res, 200, { kind: 'storage#objects', items, prefixes: [...prefixes] })
    }
    const name = decodeURIComponent(m[3])
    const o = objects.find(x => x.name === name)
    if (o === undefined) return notFound(res)
    if (m[1] === undefined && url.searchParams.get('alt') !== 'media') return sendJson(res, 200, resource(bucket, o))
    const data = await readFile(join(bdir, ...name.split('/')))
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
    if (range !== null) {
      const start = Number(range[1])
      const end = range[2] === '' ? data.length - 1 : Math.min(Number(range[2]), data.length - 1)
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` })
        res.end()
        return
      }
      res.writeHead(206, { 'content-type': 'application/octet-stream', 'content-range': `bytes ${start}-${end}/${data.length}`, 'content-length': end - start + 1 })
      res.end(data.subarray(start, end + 1))
      return
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length })
    res.end(data)
  }

  const server = createHttpServer((req, res) => {
    handle(req, res).catch(err => sendJson(res, 500, { error: { code: 500, message: String(err) } }))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  base = `http://127.0.0.1:${port}`
  return {
    endpoint: `${base}/storage/v1/`,
    port,
    dir,
    putObject: async (bucket, key, data) => {
      const file = join(dir, bucket, ...key.split('/'))
      await mkdir(dirname(file), { recursive: true })
      await writeFile(file, data)
    },
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
      await rm(dir, { recursive: true, force: true })
    }
  }
}
