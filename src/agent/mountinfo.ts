import { readFile } from 'node:fs/promises'

// Reads the kernel's mount table (/proc/self/mountinfo): the one source of truth for whether a
// path is mounted, which never touches the (possibly hung) FUSE file system itself.

export interface MountEntry {
  mountPoint: string
  fsType: string
  source: string
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
export function unescapeMountPath (field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

export function parseMountinfo (text: string): MountEntry[] {
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    const fields = line.split(' ')
    const sep = fields.indexOf('-', 6)
    if (sep === -1 || fields.length < sep + 3) continue
    out.push({ mountPoint: unescapeMountPath(fields[4]), fsType: fields[sep + 1], source: unescapeMountPath(fields[sep + 2]) })
  }
  return out
}

export async function readMountinfo (file = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  return parseMountinfo(await readFile(file, 'utf8'))
}

/** The last (topmost) mount at exactly this path, if any. */
export function mountAt (entries: readonly MountEntry[], path: string): MountEntry | undefined {
  for (let i = entries.length - 1; i >= 0; i--) if (entries[i].mountPoint === path) return entries[i]
  return undefined
}

/** The closest FUSE mount strictly above `path`: the agent never works inside one. */
export function fuseAncestor (entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined
  for (const e of entries) {
    if (!e.fsType.startsWith('fuse')) continue
    const prefix = e.mountPoint.endsWith('/') ? e.mountPoint : e.mountPoint + '/'
    if (path.startsWith(prefix) && (best === undefined || e.mountPoint.length > best.mountPoint.length)) best = e
  }
  return best
}
