import t, { type Test } from 'tap'
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AgentApplyRequest } from '../../src/schemas/agent.ts'
import { generateSshKeypair, runRclone, startAzurite, startGcsFake, startS3Server, startSftpServer } from '../helpers/servers.ts'
import { lookupUser, runAs } from '../helpers/sandbox-user.ts'
import { iniSection, leftovers, obscure, startTestAgent, waitFor, type TestAgent } from './fixture.ts'

// Every typed backend through the real agent, real rcd and real FUSE, against real servers on
// loopback (GCS: the small JSON-API fake, read-only). Writes are made by the sandbox user and
// must land in the server's own storage once the mount is removed.

function request (path: string, section: string, values: Record<string, string>, opts: { root: string, readWrite: boolean, redact: string[] }): AgentApplyRequest {
  return { path, config: iniSection(section, values), section, root: opts.root, readWrite: opts.readWrite, mountOptions: [], redact: opts.redact }
}

async function roundTrip (t: Test, agent: TestAgent, mountId: string, req: AgentApplyRequest, expectListed: string, landed: () => Promise<string | null>): Promise<void> {
  const res = await agent.put(mountId, req)
  t.equal(res.statusCode, 201, res.body)
  t.equal(res.json().status, 'mounted')
  const ls = await runAs('sandbox', ['ls', req.path])
  t.equal(ls.code, 0, ls.stderr)
  t.ok(ls.stdout.split('\n').includes(expectListed), `lists ${expectListed}: ${ls.stdout}`)
  const cat = await runAs('sandbox', ['cat', join(req.path, expectListed)])
  t.equal(cat.stdout, 'seed', 'reads through the mount')
  if (req.readWrite) {
    const w = await runAs('sandbox', ['sh', '-c', `printf 'from the sandbox' > '${req.path}/out.txt'`])
    t.equal(w.code, 0, w.stderr)
  } else {
    const w = await runAs('sandbox', ['sh', '-c', `printf x > '${req.path}/out.txt'`])
    t.match(w.stderr, /Read-only file system/)
  }
  const del = await agent.del(mountId)
  t.equal(del.statusCode, 204, del.body)
  if (req.readWrite) t.equal(await landed(), 'from the sandbox', 'the write reached the server')
  t.same(await leftovers(agent, mountId, req.path), [])
  for (const secret of req.redact) t.notOk(agent.logs().includes(secret), 'no secret in the logs')
}

t.test('SFTP with a password and with a key', async t => {
  const keys = await generateSshKeypair()
  const sftp = await startSftpServer({ authorizedKey: keys.publicKey })
  t.teardown(() => sftp.stop())
  await mkdir(join(sftp.root, 'share'))
  await writeFile(join(sftp.root, 'share', 'seed.txt'), 'seed')
  const owner = await lookupUser(sftp.user)
  if (owner === null) throw new Error('sftp user missing')
  await chown(join(sftp.root, 'share'), owner.uid, owner.gid)
  await chown(join(sftp.root, 'share', 'seed.txt'), owner.uid, owner.gid)
  const agent = await startTestAgent(t)
  const ob = obscure(sftp.password)
  const base = { type: 'sftp', host: sftp.host, port: String(sftp.port), user: sftp.user }
  await roundTrip(t, agent, 'sftp-pass', request(join(agent.base, 'sftp-pass'), 'box', { ...base, pass: ob }, { root: 'share', readWrite: true, redact: [sftp.password, ob] }),
    'seed.txt', async () => await readFile(join(sftp.root, 'share', 'out.txt'), 'utf8').catch(() => null))
  await roundTrip(t, agent, 'sftp-key', request(join(agent.base, 'sftp-key'), 'box', { ...base, key_pem: keys.keyPem }, { root: 'share', readWrite: false, redact: [keys.keyPem] }),
    'seed.txt', async () => null)
})

t.test('S3 (s3rver)', async t => {
  const s3 = await startS3Server({ buckets: ['data-bucket'] })
  t.teardown(() => s3.stop())
  const cfg = { type: 's3', provider: 'Other', endpoint: s3.endpoint, force_path_style: 'true', access_key_id: s3.accessKeyId, secret_access_key: s3.secretAccessKey }
  await writeFile(join(s3.dir, 'seed.src'), 'seed')
  await runRclone(iniSection('s3', cfg), ['copyto', join(s3.dir, 'seed.src'), 's3:data-bucket/in/seed.txt'])
  const agent = await startTestAgent(t)
  await roundTrip(t, agent, 's3rw', request(join(agent.base, 's3'), 's3', cfg, { root: 'data-bucket/in', readWrite: true, redact: [] }),
    'seed.txt', async () => (await s3.readObject('data-bucket', 'in/out.txt'))?.toString() ?? null)

  const missing = await agent.put('s3missing', request(join(agent.base, 's3m'), 's3', cfg, { root: 'no-such-bucket', readWrite: false, redact: [] }))
  t.equal(missing.json().error.code, 'PREFLIGHT_FAILED', 'a missing bucket fails the preflight')
  t.same(await leftovers(agent, 's3missing', join(agent.base, 's3m')), [])
})

t.test('Azure Blob (azurite)', async t => {
  const az = await startAzurite()
  t.teardown(() => az.stop())
  await az.createContainer('box')
  const section = az.rcloneSection('az')
  const src = join(az.dir, 'seed.src')
  await writeFile(src, 'seed')
  await runRclone(section, ['copyto', src, 'az:box/seed.txt'])
  const agent = await startTestAgent(t)
  const cfg = { type: 'azureblob', account: az.account, key: az.key, use_emulator: 'true', endpoint: az.endpoint }
  await roundTrip(t, agent, 'azrw', request(join(agent.base, 'az'), 'az', cfg, { root: 'box', readWrite: true, redact: [az.key] }),
    'seed.txt', async () => await waitFor(async () => (await runRclone(section, ['cat', 'az:box/out.txt']).catch(() => '')) || null, 5000).catch(() => null))
})

t.test('GCS (JSON-API fake), read-only with anonymous access', async t => {
  const gcs = await startGcsFake({ buckets: ['gbucket'] })
  t.teardown(() => gcs.stop())
  await gcs.putObject('gbucket', 'sets/seed.txt', 'seed')
  await gcs.putObject('gbucket', 'sets/deep/other.bin', 'x')
  const agent = await startTestAgent(t)
  const cfg = { type: 'google cloud storage', anonymous: 'true', endpoint: gcs.endpoint }
  await roundTrip(t, agent, 'gcsro', request(join(agent.base, 'gcs'), 'gcs', cfg, { root: 'gbucket/sets', readWrite: false, redact: [] }),
    'seed.txt', async () => null)
})
