import t from 'tap'
import { normalizeMountOptions, toRcOptions, parseDuration, parseSize } from '../../src/rclone/mount-options.ts'

t.test('normalizes allowed flags into a canonical sorted form', async t => {
  t.same(normalizeMountOptions(['--vfs-write-back=2s', '--dir-cache-time', '1m', '--no-modtime']),
    ['--dir-cache-time', '1m', '--no-modtime', '--vfs-write-back', '2s'])
  t.same(normalizeMountOptions(['--no-seek', 'false']), [])
})

t.test('refuses flags outside the allowlist, naming them', async t => {
  for (const bad of ['--daemon', '--config', '--rc', '--rc-addr=0.0.0.0:1', '--cache-dir', '--log-file', '--allow-root', '--uid', '--read-only', '-o', 'allow_other']) {
    t.throws(() => normalizeMountOptions([bad, 'x']), /mountOptions\[0\]/, bad)
  }
  t.throws(() => normalizeMountOptions(['--dir-cache-time']), /needs a value/)
  t.throws(() => normalizeMountOptions(['--dir-cache-time', 'soon']), /not a duration/)
  t.throws(() => normalizeMountOptions(['--vfs-cache-mode', 'sometimes']), /one of/)
  t.throws(() => normalizeMountOptions(['--umask', '999']), /octal/)
  t.throws(() => normalizeMountOptions(['--no-modtime', '--no-modtime']), /twice/)
  t.throws(() => normalizeMountOptions(['--__proto__', '1']), /not an allowed/)
})

t.test('translates canonical flags to rc mount/mount options', async t => {
  t.same(toRcOptions(['--attr-timeout', '2s', '--dir-cache-time', '1m', '--no-modtime', '--vfs-cache-max-size', '1G', '--umask', '027']), {
    mountOpt: { AttrTimeout: 2e9 },
    vfsOpt: { DirCacheTime: 60e9, NoModTime: true, CacheMaxSize: 1024 ** 3, Umask: 0o27 }
  })
  t.equal(parseDuration('1h30m'), 5400e9)
  t.equal(parseDuration('10'), 10e9)
  t.equal(parseSize('10'), 10240)
  t.equal(parseSize('off'), -1)
})
