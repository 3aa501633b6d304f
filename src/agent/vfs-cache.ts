import { readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import path from 'node:path'

// rclone keeps a mount's VFS cache in <cacheDir>/vfs/<fs name> and its per-file metadata in
// <cacheDir>/vfsMeta/<fs name>; a metadata file with "Dirty": true is a write that has not
// reached the remote yet. Each mount's backend has its own fs name (see mount-spec.ts).

function checked (cacheDir: string, sub: 'vfs' | 'vfsMeta', name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw new Error('invalid VFS cache name')
  return path.join(cacheDir, sub, name)
}

export async function cacheExists (cacheDir: string, name: string): Promise<boolean> {
  return await stat(checked(cacheDir, 'vfs', name)).then(() => true, () => false)
}

export async function removeCache (cacheDir: string, name: string): Promise<void> {
  await rm(checked(cacheDir, 'vfs', name), { recursive: true, force: true })
  await rm(checked(cacheDir, 'vfsMeta', name), { recursive: true, force: true })
}

/** Number of cached files whose writes never reached the remote. */
export async function countDirty (cacheDir: string, name: string): Promise<number> {
  let count = 0
  const walk = async (dir: string): Promise<void> => {
    let entries
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const full = path.join(dir, e.name)
      if (e.isDirectory()) {
        await walk(full)
      } else if (e.isFile()) {
        try {
          const meta = JSON.parse(await readFile(full, 'utf8')) as { Dirty?: unknown }
          if (meta.Dirty === true) count++
        } catch {}
      }
    }
  }
  await walk(checked(cacheDir, 'vfsMeta', name))
  return count
}

/** Hands a dead mount's cache (and its pending writes) to the backend that replaces it. */
export async function moveCache (cacheDir: string, from: string, to: string): Promise<boolean> {
  if (from === to || await cacheExists(cacheDir, to)) return false
  for (const sub of ['vfs', 'vfsMeta'] as const) {
    try {
      await rename(checked(cacheDir, sub, from), checked(cacheDir, sub, to))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return true
}
