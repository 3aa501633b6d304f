// The allowlist of rclone mount/VFS flags a caller may set, their canonical form, and their
// translation into the `mountOpt`/`vfsOpt` objects of rclone's rc `mount/mount` call (Go field
// names, durations in nanoseconds, sizes in bytes). Flags that control the daemon, the config
// file, logging, remote control, the cache location, ownership or the read-only switch are
// never the caller's: they are not in the table, so they are refused.

export type OptionKind = 'duration' | 'size' | 'bool' | 'cacheMode' | 'octal'

interface OptionSpec {
  kind: OptionKind
  group: 'vfsOpt' | 'mountOpt'
  field: string
}

export const MOUNT_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  '--dir-cache-time': { kind: 'duration', group: 'vfsOpt', field: 'DirCacheTime' },
  '--poll-interval': { kind: 'duration', group: 'vfsOpt', field: 'PollInterval' },
  '--vfs-cache-mode': { kind: 'cacheMode', group: 'vfsOpt', field: 'CacheMode' },
  '--vfs-cache-max-age': { kind: 'duration', group: 'vfsOpt', field: 'CacheMaxAge' },
  '--vfs-cache-max-size': { kind: 'size', group: 'vfsOpt', field: 'CacheMaxSize' },
  '--vfs-cache-poll-interval': { kind: 'duration', group: 'vfsOpt', field: 'CachePollInterval' },
  '--vfs-read-chunk-size': { kind: 'size', group: 'vfsOpt', field: 'ChunkSize' },
  '--vfs-read-chunk-size-limit': { kind: 'size', group: 'vfsOpt', field: 'ChunkSizeLimit' },
  '--vfs-read-ahead': { kind: 'size', group: 'vfsOpt', field: 'ReadAhead' },
  '--vfs-write-back': { kind: 'duration', group: 'vfsOpt', field: 'WriteBack' },
  '--vfs-write-wait': { kind: 'duration', group: 'vfsOpt', field: 'WriteWait' },
  '--vfs-read-wait': { kind: 'duration', group: 'vfsOpt', field: 'ReadWait' },
  '--vfs-case-insensitive': { kind: 'bool', group: 'vfsOpt', field: 'CaseInsensitive' },
  '--vfs-fast-fingerprint': { kind: 'bool', group: 'vfsOpt', field: 'FastFingerprint' },
  '--no-modtime': { kind: 'bool', group: 'vfsOpt', field: 'NoModTime' },
  '--no-checksum': { kind: 'bool', group: 'vfsOpt', field: 'NoChecksum' },
  '--no-seek': { kind: 'bool', group: 'vfsOpt', field: 'NoSeek' },
  '--umask': { kind: 'octal', group: 'vfsOpt', field: 'Umask' },
  '--attr-timeout': { kind: 'duration', group: 'mountOpt', field: 'AttrTimeout' },
  '--max-read-ahead': { kind: 'size', group: 'mountOpt', field: 'MaxReadAhead' },
  '--async-read': { kind: 'bool', group: 'mountOpt', field: 'AsyncRead' }
}

export class MountOptionError extends Error {}

const DURATION_UNITS: Record<string, number> = {
  ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9, w: 7 * 86400e9
}
const SIZE_UNITS: Record<string, number> = {
  '': 1024, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4
}
const CACHE_MODES = ['off', 'minimal', 'writes', 'full']
const MAX_NS = 366 * 86400e9

/** Go-style duration with rclone's extra units, e.g. 1m, 1h30m, 500ms, 2d; a bare number is seconds. */
export function parseDuration (value: string): number {
  if (/^\d{1,9}(\.\d{1,9})?$/.test(value)) return Math.round(Number(value) * 1e9)
  const re = /(\d{1,9}(?:\.\d{1,9})?)(ns|us|µs|ms|s|m|h|d|w)/gy
  let total = 0
  let matched = 0
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]]
    matched = re.lastIndex
  }
  if (matched === 0 || matched !== value.length) throw new MountOptionError(`"${value}" is not a duration (e.g. 30s, 5m, 1h)`)
  if (total > MAX_NS) throw new MountOptionError(`"${value}" is longer than 366 days`)
  return Math.round(total)
}

/** rclone size: a number with an optional binary suffix (K, M, G, T; B for bytes; none means KiB), or "off". */
export function parseSize (value: string): number {
  if (value === 'off') return -1
  const m = /^(\d{1,12}(?:\.\d{1,6})?)([bkmgt]?)$/i.exec(value)
  if (m === null) throw new MountOptionError(`"${value}" is not a size (e.g. 512M, 10G, off)`)
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()])
  if (bytes > 1024 ** 5) throw new MountOptionError(`"${value}" is too large`)
  return bytes
}

function parseValue (flag: string, kind: OptionKind, value: string): number | boolean | string {
  switch (kind) {
    case 'duration': return parseDuration(value)
    case 'size': return parseSize(value)
    case 'bool':
      if (value === 'true') return true
      if (value === 'false') return false
      throw new MountOptionError(`${flag} takes true or false`)
    case 'cacheMode':
      if (!CACHE_MODES.includes(value)) throw new MountOptionError(`${flag} takes one of ${CACHE_MODES.join(', ')}`)
      return value
    case 'octal':
      if (!/^0?[0-7]{3}$/.test(value)) throw new MountOptionError(`${flag} takes an octal mask such as 022`)
      return parseInt(value, 8)
  }
}

/**
 * Validates caller flags against the allowlist and returns their canonical form:
 * `["--flag", "value", ...]` for valued flags, `["--flag"]` for a true boolean, sorted by flag,
 * each flag at most once. Throws MountOptionError naming the offending flag.
 */
export function normalizeMountOptions (flags: readonly string[]): string[] {
  const seen = new Map<string, string>()
  for (let i = 0; i < flags.length; i++) {
    const token = flags[i]
    if (typeof token !== 'string' || !token.startsWith('--')) {
      throw new MountOptionError(`mountOptions[${i}]: expected a flag starting with --`)
    }
    const eq = token.indexOf('=')
    const flag = eq === -1 ? token : token.slice(0, eq)
    const spec = Object.hasOwn(MOUNT_OPTIONS, flag) ? MOUNT_OPTIONS[flag] : undefined
    if (spec === undefined) throw new MountOptionError(`mountOptions[${i}]: ${JSON.stringify(flag.slice(0, 64))} is not an allowed mount option`)
    let value: string
    if (eq !== -1) {
      value = token.slice(eq + 1)
    } else if (spec.kind === 'bool') {
      const next = flags[i + 1]
      if (next === 'true' || next === 'false') { value = next; i++ } else value = 'true'
    } else {
      const next = flags[i + 1]
      if (next === undefined || next.startsWith('--')) throw new MountOptionError(`mountOptions[${i}]: ${flag} needs a value`)
      value = next
      i++
    }
    if (seen.has(flag)) throw new MountOptionError(`mountOptions[${i}]: ${flag} is given twice`)
    try {
      parseValue(flag, spec.kind, value)
    } catch (err) {
      throw new MountOptionError(`mountOptions[${i}]: ${flag}: ${(err as Error).message}`)
    }
    seen.set(flag, value)
  }
  const out: string[] = []
  for (const flag of [...seen.keys()].sort()) {
    const value = seen.get(flag) as string
    if (MOUNT_OPTIONS[flag].kind === 'bool') {
      if (value === 'true') out.push(flag)
    } else {
      out.push(flag, value)
    }
  }
  return out
}

/** Translates canonical flags (from normalizeMountOptions) into rc mount/mount option objects. */
export function toRcOptions (canonical: readonly string[]): { mountOpt: Record<string, unknown>, vfsOpt: Record<string, unknown> } {
  const mountOpt: Record<string, unknown> = {}
  const vfsOpt: Record<string, unknown> = {}
  for (let i = 0; i < canonical.length; i++) {
    const spec = MOUNT_OPTIONS[canonical[i]]
    if (spec === undefined) throw new MountOptionError(`${canonical[i]} is not an allowed mount option`)
    const target = spec.group === 'vfsOpt' ? vfsOpt : mountOpt
    if (spec.kind === 'bool') {
      target[spec.field] = true
    } else {
      target[spec.field] = parseValue(canonical[i], spec.kind, canonical[i + 1])
      i++
    }
  }
  return { mountOpt, vfsOpt }
}
