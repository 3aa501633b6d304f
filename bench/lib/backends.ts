import { chown, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { obscure } from '../../src/rclone/obscure.ts'
import { lookupUser } from '../../test/helpers/sandbox-user.ts'
import { runRclone, startS3Server, startSftpServer, startWebdavServer } from '../../test/helpers/servers.ts'

// The three loopback backends the latency items compare on: the same remote reached through
// the API (typed creds) and through a hand-written rclone config for bare `rclone mount`.

export type BackendKind = 'sftp' | 'webdav' | 's3'
export const BACKENDS: readonly BackendKind[] = ['sftp', 'webdav', 's3']

export interface BenchBackend {
  kind: BackendKind
  /** POST /sandboxes/:id/mounts body minus path/readWrite. */
  apiBody: { remote: string, backend: BackendKind, creds: Record<string, string | number | boolean> }
  /** rclone config for the bare baseline, and the remote to mount from it. */
  bareConfig: string
  bareRemote: string
  /** Whether `name` (written at the root of a read-write mount) reached the backend. */
  holds: (name: string) => Promise<boolean>
  stop: () => Promise<void>
}

const SEED_FILES = 20

async function seed (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (let i = 0; i < SEED_FILES; i++) await writeFile(path.join(dir, `file-${i}.txt`), `seed ${i}\n`)
}

async function exists (file: string): Promise<boolean> {
  try {
    await stat(file)
    return true
  } catch {
    return false
  }
}

export async function startBackend (kind: BackendKind): Promise<BenchBackend> {
  if (kind === 'sftp') {
    const sftp = await startSftpServer()
    const data = path.join(sftp.root, 'data')
    await seed(data)
    // read-write runs write here as the SFTP user
    const account = await lookupUser(sftp.user)
    if (account !== null) await chown(data, account.uid, account.gid)
    return {
      kind,
      apiBody: { remote: 'box:data', backend: 'sftp', creds: { host: sftp.host, port: sftp.port, user: sftp.user, pass: sftp.password } },
      bareConfig: ['[box]', 'type = sftp', `host = ${sftp.host}`, `port = ${sftp.port}`, `user = ${sftp.user}`, `pass = ${obscure(sftp.password)}`, ''].join('\n'),
      bareRemote: 'box:data',
      holds: async name => await exists(path.join(data, name)),
      stop: sftp.stop
    }
  }
  if (kind === 'webdav') {
    const dav = await startWebdavServer()
    await seed(dav.dir)
    return {
      kind,
      apiBody: { remote: 'dav:', backend: 'webdav', creds: { url: dav.url, vendor: 'other', user: dav.user, pass: dav.pass } },
      bareConfig: ['[dav]', 'type = webdav', `url = ${dav.url}`, 'vendor = other', `user = ${dav.user}`, `pass = ${obscure(dav.pass)}`, ''].join('\n'),
      bareRemote: 'dav:',
      holds: async name => await exists(path.join(dav.dir, name)),
      stop: dav.stop
    }
  }
  const bucket = 'bench-bucket'
  const s3 = await startS3Server({ buckets: [bucket] })
  const config = ['[s3]', 'type = s3', 'provider = Other', `access_key_id = ${s3.accessKeyId}`, `secret_access_key = ${s3.secretAccessKey}`,
    `endpoint = ${s3.endpoint}`, 'force_path_style = true', ''].join('\n')
  const local = await mkdtemp(path.join(tmpdir(), 'bench-seed-'))
  try {
    await seed(local)
    await runRclone(config, ['copy', local, `s3:${bucket}`])
  } finally {
    await rm(local, { recursive: true, force: true })
  }
  return {
    kind,
    apiBody: { remote: `s3:${bucket}`, backend: 's3', creds: { provider: 'Other', access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey, endpoint: s3.endpoint, force_path_style: true } },
    bareConfig: config,
    bareRemote: `s3:${bucket}`,
    holds: async name => (await s3.readObject(bucket, name)) !== null,
    stop: s3.stop
  }
}
