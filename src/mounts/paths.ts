import { InvalidPath } from '../errors.ts'

// Mount points: absolute, normalized, no `..`, never a system location, and never inside or
// around another mount of the same sandbox.

/** Trees where nothing may be mounted at any depth. */
// /root is a tree: a mount below it (say /root/.config) would put files the sandbox user
// controls where root's programs read their settings.
const SYSTEM_TREES = ['/proc', '/sys', '/dev', '/etc', '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/boot', '/run', '/var/run', '/var/lib', '/var/log', '/var/cache', '/var/spool', '/snap', '/lost+found', '/root']
/** Directories that may hold mounts below them but are never mount points themselves. */
const SYSTEM_DIRS = ['/', '/home', '/tmp', '/var', '/var/tmp', '/opt', '/mnt', '/media', '/srv', '/workspace']

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f\u0085\u2028\u2029]/
// A lone surrogate has no UTF-8 form: the file system would get U+FFFD, another path than the
// one the registry holds.
const LONE_SURROGATE = /\p{Cs}/u

export function normalizeMountPath (input: string, field = 'path'): string {
  if (CONTROL.test(input)) throw new InvalidPath(`${field}: control characters are not allowed`)
  if (LONE_SURROGATE.test(input)) throw new InvalidPath(`${field}: is not valid Unicode text`)
  if (input.includes('\\')) throw new InvalidPath(`${field}: backslashes are not allowed`)
  if (!input.startsWith('/')) throw new InvalidPath(`${field}: must be an absolute path`)
  const parts = input.split('/').filter(p => p !== '' && p !== '.')
  if (parts.includes('..')) throw new InvalidPath(`${field}: must not contain ..`)
  if (parts.some(p => Buffer.byteLength(p) > 255)) throw new InvalidPath(`${field}: a path component is longer than 255 bytes`)
  const normalized = '/' + parts.join('/')
  if (Buffer.byteLength(normalized) > 1024) throw new InvalidPath(`${field}: longer than 1024 bytes`)
  if (SYSTEM_DIRS.includes(normalized)) throw new InvalidPath(`${field}: ${normalized} is a system location`)
  for (const tree of SYSTEM_TREES) {
    if (normalized === tree || normalized.startsWith(tree + '/')) throw new InvalidPath(`${field}: ${tree} is a system location`)
  }
  return normalized
}

/** True when one path is strictly inside the other. */
export function nests (a: string, b: string): boolean {
  return a.startsWith(b + '/') || b.startsWith(a + '/')
}
