import { chown, lstat, mkdir, readdir, readFile, realpath, rmdir } from 'node:fs/promises'
import path from 'node:path'
import { agentError } from './errors.ts'
import { fuseAncestor, mountAt, type MountEntry } from './mountinfo.ts'

// Decides whether a path may become a mount point, creates it for the sandbox user when it is
// missing, and removes what was created. The sandbox user controls much of the file system,
// so symlinks anywhere on the path are refused: root must never be steered onto another path.

export interface SandboxAccount {
  name: string
  uid: number
  gid: number
}

export async function lookupAccount (name: string, passwdFile = '/etc/passwd'): Promise<SandboxAccount | undefined> {
  const text = await readFile(passwdFile, 'utf8').catch(() => '')
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (f[0] === name && f.length >= 4) return { name, uid: Number(f[2]), gid: Number(f[3]) }
  }
  return undefined
}

function refused (p: string, why: string): Error {
  return agentError('MOUNT_POINT_REFUSED', `mount point ${p} ${why}`)
}

function errno (err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code
}

/**
 * Checks a mount point before anything is changed. Returns whether the directory exists.
 * The caller has already dealt with a stale mount of its own at this path.
 */
export async function checkMountPoint (p: string, owner: SandboxAccount, entries: readonly MountEntry[]): Promise<{ exists: boolean }> {
  if (mountAt(entries, p) !== undefined) throw refused(p, 'is already a mount point')
  const above = fuseAncestor(entries, p)
  if (above !== undefined) throw refused(p, `is inside the FUSE mount ${above.mountPoint}`)
  let st
  try {
    st = await lstat(p)
  } catch (err) {
    if (errno(err) === 'ENOTDIR') throw refused(p, 'has a parent that is not a directory')
    if (errno(err) !== 'ENOENT') throw refused(p, `cannot be inspected (${errno(err) ?? 'error'})`)
  }
  if (st === undefined) {
    // the closest existing ancestor must be a real directory reached without symlinks
    let dir = path.dirname(p)
    for (;;) {
      try {
        const ast = await lstat(dir)
        if (ast.isSymbolicLink()) throw refused(p, 'goes through a symbolic link')
        if (!ast.isDirectory()) throw refused(p, `has a parent ${dir} that is not a directory`)
        break
      } catch (err) {
        if (errno(err) !== 'ENOENT') throw err
        dir = path.dirname(dir)
      }
    }
    if (await realpath(dir) !== dir) throw refused(p, 'goes through a symbolic link')
    return { exists: false }
  }
  if (st.isSymbolicLink()) throw refused(p, 'is a symbolic link')
  if (!st.isDirectory()) throw refused(p, 'is not a directory')
  if (st.uid !== owner.uid) throw refused(p, `is not owned by the sandbox user ${owner.name}`)
  if (await realpath(p) !== p) throw refused(p, 'goes through a symbolic link')
  if ((await readdir(p)).length > 0) throw refused(p, 'is a directory that is not empty')
  return { exists: true }
}

/** Creates the missing directories of `p` owned by the sandbox user; returns them outermost first. */
export async function createMountPoint (p: string, owner: SandboxAccount): Promise<string[]> {
  const missing: string[] = []
  for (let dir = p; dir !== '/'; dir = path.dirname(dir)) {
    try {
      await lstat(dir)
      break
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err
      missing.unshift(dir)
    }
  }
  const created: string[] = []
  try {
    for (const dir of missing) {
      await mkdir(dir, { mode: 0o755 })
      created.push(dir)
      await chown(dir, owner.uid, owner.gid)
    }
    // a racing user could have swapped a component for a symlink meanwhile
    if (await realpath(p) !== p) throw refused(p, 'goes through a symbolic link')
  } catch (err) {
    await removeCreatedDirs(created)
    throw err
  }
  return created
}

/** Removes directories the agent created, innermost first, only while they are empty. */
export async function removeCreatedDirs (dirs: readonly string[]): Promise<void> {
  for (const dir of [...dirs].reverse()) {
    try {
      await rmdir(dir)
    } catch (err) {
      if (errno(err) === 'ENOENT') continue
      return
    }
  }
}
