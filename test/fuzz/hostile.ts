import fc from 'fast-check'

// Hostile strings and arbitraries shared by the fuzz suites: encodings, control and invisible
// characters, path tricks, INI injection, prototype keys, metadata endpoints.

export const HOSTILE_STRINGS: readonly string[] = [
  '', ' ', '\t', '\u0000', '\n', '\r', '\r\n', '\u000b', '\u001b[31m', '\u007f', '\u0085', '\u00a0', '\u2028', '\u2029',
  '\u202e', '\u200b', '\u200f', '\ufeff', '\ud800', '\udfff', '\uffff', '😀', 'İ', 'ß', '\u0301',
  '.', '..', '/', '//', '\\', '%2e%2e', '%2F', '%00', '..%2f..%2fetc', '~', '~root',
  // eslint-disable-next-line no-template-curly-in-string -- a literal shell expansion, as a caller would send it
  '${HOME}', '$(id)', '`id`', '%(home)s', '%(x)s', '#', ';', '[', ']', '=', ':', '"', '"""', '`', '\'',
  '\n[x]\ntype = local', 'v\r\n[y]\ntype = alias', 'key = v\r\n', ' = \n[z]\n', '[dav]',
  'RCLONE_ENCRYPT_V0:', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty',
  'http://169.254.169.254/latest/meta-data/', 'http://[::ffff:169.254.169.254]/', 'http://0xa9fea9fe/',
  'http://2852039166/', 'http://metadata.google.internal./', 'http://127.0.0.1:1@169.254.169.254/',
  'file:///etc/passwd', '/etc/shadow', '-o allow_other', '--rc-addr=0.0.0.0:5572', '--config=/etc/x'
]

/** Strings from the list above, random text, and mixtures of the two. */
export function hostileString (maxLength = 40): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_STRINGS) },
    { weight: 2, arbitrary: fc.string({ maxLength }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength }) },
    { weight: 2, arbitrary: fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom(...HOSTILE_STRINGS), fc.string({ maxLength: 8 })).map(parts => parts.join('')) }
  )
}

export const PATH_TRICKS: readonly string[] = [
  '/mnt/./a', '//mnt//a/', '/mnt/a/../../etc', '/mnt/%2e%2e/etc', '/mnt/..', '/mnt/...', '/mnt/a/.',
  '/mnt/\u202eevil', '/mnt/\u200b', '/mnt/a\u0000b', '/mnt/a\nb', '/mnt/a\u2028', '/mnt/\ud800', '/mnt/a\\..\\..\\etc',
  'mnt/a', ' /mnt/a', '/etc', '/etc/cron.d', '/proc/self', '/dev/shm/x', '/run/x', '/sys/kernel', '/usr/local/bin',
  '/var/lib/x', '/var/spool/cron', '/boot/x', '/', '/tmp', '/home', '/mnt', '/root', '/root/.ssh', '/root/.config/x',
  '/mnt/' + 'a'.repeat(256), '/mnt/' + '😀'.repeat(100), '/mnt/' + ('a'.repeat(200) + '/').repeat(6), '/mnt/data'
]

export function mountPath (): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...PATH_TRICKS) },
    { weight: 3, arbitrary: fc.array(fc.oneof(fc.constantFrom('.', '..', '', 'a', 'mnt', 'etc', 'proc', '%2e%2e', 'x y'), hostileString(6)), { maxLength: 5 }).map(parts => '/' + parts.join('/')) },
    { weight: 1, arbitrary: hostileString() }
  )
}

export const REMOTE_TRICKS: readonly string[] = [
  'dav:x', ':webdav:x', ':webdav,url=http://169.254.169.254:x', 'dav,env_auth=true:x', 'dav', ':', 'dav:\n', '-dav:x',
  'd@v:x', 'd+v:x', 'dav :x', ' dav:x', 'a'.repeat(65) + ':x', 'dav:../../etc', 'dav:/etc/passwd', 'local:/etc',
  '__proto__:x', 'constructor:x', 'dav:x\u0000', 'dav.x:y', 'dav x:y', '\u202edav:x', 'dav:' + 'x'.repeat(2000)
]

export function remote (): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...REMOTE_TRICKS) },
    { weight: 2, arbitrary: fc.tuple(hostileString(10), hostileString(20)).map(([a, b]) => `${a}:${b}`) },
    { weight: 1, arbitrary: hostileString() }
  )
}

export const BACKENDS = ['s3', 'gcs', 'azureblob', 'sftp', 'webdav', 'dropbox'] as const

export const HOSTILE_KEYS: readonly string[] = [
  'type', 'Type', 'TYPE', ' type', 'type ', 'env_auth', 'profile', 'shared_credentials_file', 'key_file', 'known_hosts_file',
  'bearer_token_command', 'service_account_file', 'use_msi', 'ssh', 'server_command', 'global.x', 'override.url', 'dav.url',
  'url\n[x]', 'a=b', 'a:b', '', ' ', '-', '#x', ';x', '[x]', 'constructor', 'toString', 'hasOwnProperty', 'prototype',
  'x'.repeat(64), 'é', '\u202eurl'
]

/** Values a key may be given: hostile strings, canaries, booleans, numbers, and wrong types. */
export function credValue (canary: string): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 4, arbitrary: hostileString() },
    { weight: 2, arbitrary: fc.string({ maxLength: 12 }).map(s => `${canary}${s}`) },
    { weight: 1, arbitrary: fc.boolean() },
    { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 60)) },
    { weight: 1, arbitrary: fc.constantFrom(null, [], {}, ['a'], { a: 1 }) },
    { weight: 1, arbitrary: fc.constant('x'.repeat(16385)) }
  )
}

export const MOUNT_OPTION_TRICKS: readonly string[][] = [
  ['--rc-addr', '0.0.0.0:5572'], ['--rc-addr=0.0.0.0:5572'], ['--config=/etc/x'], ['--config', '/etc/x'], ['--daemon'],
  ['-o', 'allow_other'], ['-o allow_other'], ['--allow-other'], ['--allow-root'], ['--cache-dir', '/'], ['--cache-dir=/tmp'],
  ['--log-file', '/etc/passwd'], ['--uid', '0'], ['--gid=0'], ['--read-only=false'], ['--rc'], ['--rc-no-auth'], ['--rc-user=x'],
  ['--default-permissions'], ['--'], ['--constructor'], ['--__proto__'], ['--toString'], ['--hasOwnProperty'],
  ['--dir-cache-time', '--rc'], ['--dir-cache-time=1m --rc'], ['--dir-cache-time', '1m\n--rc'], ['--vfs-cache-mode', 'full; id'],
  ['--dir-cache-time=1m', '--dir-cache-time=2m'], ['--vfs-cache-max-size', '1e100'], ['--dir-cache-time=-1s'],
  ['--dir-cache-time=999999999h'], ['--umask', '0777777'], ['--DIR-CACHE-TIME', '1m'], ['\u2014dir-cache-time', '1m'],
  ['--dir-cache-time\u0000', '1m'], ['--no-modtime', 'maybe'], ['--attr-timeout', ''], ['--fuse-flag', 'allow_other'],
  ['--option', 'allow_other'], ['--devname', 'x'], ['--volname', 'x'], ['--network-mode'], ['--config'],
  ['--dir-cache-time=1m'], ['--vfs-cache-mode', 'full'], ['--no-modtime'], ['--umask=022']
]

export function mountOptions (): fc.Arbitrary<unknown> {
  const token = fc.oneof(
    fc.constantFrom('--dir-cache-time', '--vfs-cache-mode', '--no-modtime', '--umask', '--attr-timeout', '1m', 'full', '022', 'true'),
    fc.constantFrom(...MOUNT_OPTION_TRICKS.flat()),
    hostileString(20)
  )
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...MOUNT_OPTION_TRICKS) },
    { weight: 3, arbitrary: fc.array(token, { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom('--daemon', null, 5, [1], [null], [['--rc']], Array.from({ length: 65 }, () => '--no-modtime'), ['x'.repeat(257)]) }
  )
}
