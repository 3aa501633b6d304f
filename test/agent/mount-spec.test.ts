import t from 'tap'
import { buildMountSpec, configHash, MOUNT_ID_KEY } from '../../src/agent/mount-spec.ts'
import type { AgentApplyRequest } from '../../src/schemas/agent.ts'

const owner = { uid: 1234, gid: 2345 }
const base: AgentApplyRequest = {
  path: '/home/sandbox/data',
  config: '[s3]\ntype = s3\nprovider = Other\nsecret_access_key = `quoted=value`\n\n[other]\ntype = webdav\n',
  section: 's3',
  root: 'bucket/dir',
  readWrite: false,
  mountOptions: [],
  redact: ['quoted=value', '']
}

t.test('inline backend from the section, with the root and a per-mount key', async t => {
  const spec = buildMountSpec('m1', base, owner)
  t.same(spec.fs, { type: 's3', provider: 'Other', secret_access_key: 'quoted=value', _root: 'bucket/dir', [MOUNT_ID_KEY]: 'm1' })
  t.same(spec.redact, ['quoted=value'], 'empty redact values dropped')
  t.equal(spec.configHash, configHash(base))
  t.not(configHash({ ...base, readWrite: true }), spec.configHash, 'read-write changes the hash')
  t.not(configHash({ ...base, mountOptions: ['--no-modtime'] }), spec.configHash, 'options change the hash')
})

t.test('the agent forces read-only, owner and allow_other; callers cannot override', async t => {
  const ro = buildMountSpec('m1', { ...base, mountOptions: ['--dir-cache-time', '1m', '--attr-timeout', '2s'] }, owner)
  t.same(ro.mountOpt, { AttrTimeout: 2e9, AllowOther: true })
  t.same(ro.vfsOpt, { DirCacheTime: 60e9, ReadOnly: true, UID: 1234, GID: 2345 })
})

t.test('read-write mounts get a disk cache and a short write-back unless the caller chose one', async t => {
  t.match(buildMountSpec('m1', { ...base, readWrite: true }, owner).vfsOpt, { ReadOnly: false, CacheMode: 'writes', WriteBack: 1e9 })
  t.match(buildMountSpec('m1', { ...base, readWrite: true, mountOptions: ['--vfs-cache-mode', 'off'] }, owner).vfsOpt, { CacheMode: 'writes' })
  t.match(buildMountSpec('m1', { ...base, readWrite: true, mountOptions: ['--vfs-cache-mode', 'full', '--vfs-write-back', '10s'] }, owner).vfsOpt, { CacheMode: 'full', WriteBack: 10e9 })
  t.notOk('CacheMode' in buildMountSpec('m1', base, owner).vfsOpt, 'read-only mounts keep rclone\'s default')
})

t.test('refuses what the agent never mounts', async t => {
  const bad: Array<[Partial<AgentApplyRequest>, RegExp]> = [
    [{ config: '[s3]\ntype = alias\nremote = /etc\n' }, /not mounted/],
    [{ config: '[s3]\ntype = crypt\n' }, /not mounted/],
    [{ config: '[s3]\ntype = sftp\nkey_file = /root/.ssh/id_rsa\n' }, /key_file/],
    [{ config: '[s3]\ntype = s3\nenv_auth = true\n' }, /env_auth/],
    [{ config: `[s3]\ntype = s3\n${MOUNT_ID_KEY} = other\n` }, /not allowed/],
    [{ path: '/home/sandbox/data/' }, /normalised/],
    [{ path: '/home/sandbox/\u0000x' }, /normalised/]
  ]
  for (const [patch, why] of bad) {
    t.throws(() => buildMountSpec('m1', { ...base, ...patch }, owner), { code: 'BAD_REQUEST', message: why }, JSON.stringify(patch))
  }
})
