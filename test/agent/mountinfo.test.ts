import t from 'tap'
import { fuseAncestor, mountAt, parseMountinfo, readMountinfo, unescapeMountPath } from '../../src/agent/mountinfo.ts'

t.test('parses mountinfo lines, with and without optional fields, unescaping paths', async t => {
  const text = [
    '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
    '42 22 0:39 / /home/sandbox/my\\040data rw,nosuid,nodev,relatime - fuse.rclone sandbox-mounts:m1 rw,user_id=0,group_id=0,allow_other',
    '43 22 0:40 / /home/sandbox/tab\\011back\\134slash rw shared:7 master:2 - fuse.rclone :s3{abc}:bucket rw',
    'garbage',
    ''
  ].join('\n')
  const entries = parseMountinfo(text)
  t.same(entries, [
    { mountPoint: '/', fsType: 'ext4', source: '/dev/vda1' },
    { mountPoint: '/home/sandbox/my data', fsType: 'fuse.rclone', source: 'sandbox-mounts:m1' },
    { mountPoint: '/home/sandbox/tab\tback\\slash', fsType: 'fuse.rclone', source: ':s3{abc}:bucket' }
  ])
  t.equal(unescapeMountPath('a\\012b'), 'a\nb')
  t.equal(mountAt(entries, '/home/sandbox/my data')?.source, 'sandbox-mounts:m1')
  t.equal(mountAt(entries, '/home/sandbox'), undefined)
  t.equal(fuseAncestor(entries, '/home/sandbox/my data/sub/dir')?.mountPoint, '/home/sandbox/my data')
  t.equal(fuseAncestor(entries, '/home/sandbox/my data'), undefined, 'a mount is not its own ancestor')
  t.equal(fuseAncestor(entries, '/home/sandbox/my database'), undefined, 'prefix of a name is not an ancestor')
})

t.test('reads the real mount table', async t => {
  const entries = await readMountinfo()
  t.ok(entries.some(e => e.mountPoint === '/'), 'the root file system is listed')
  t.ok(entries.some(e => e.mountPoint === '/proc' && e.fsType === 'proc'))
})
