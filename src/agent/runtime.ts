import { execFile } from 'node:child_process'
import { access, constants } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'

// Finds the programs the agent depends on in the sandbox image: rclone and fusermount3, plus
// the FUSE device. Looked up on every apply (cheap) so an image fixed underneath a running
// agent is noticed without a restart.

const exec = promisify(execFile)

export interface Runtime {
  rclone: string | null
  fusermount: string | null
  fuseDevice: boolean
}

async function isExecutable (file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Resolves a program name against PATH the way execvp would; absolute or relative paths are checked as given. */
export async function findProgram (name: string, searchPath: string): Promise<string | null> {
  if (name === '') return null
  if (name.includes('/')) return await isExecutable(name) ? path.resolve(name) : null
  for (const dir of searchPath.split(':')) {
    if (dir === '') continue
    const candidate = path.join(dir, name)
    if (await isExecutable(candidate)) return candidate
  }
  return null
}

export async function detectRuntime (opts: { rcloneBin: string, fusermountBin: string, path: string }): Promise<Runtime> {
  const [rclone, fusermount, fuseDevice] = await Promise.all([
    findProgram(opts.rcloneBin, opts.path),
    findProgram(opts.fusermountBin, opts.path),
    access('/dev/fuse', constants.R_OK | constants.W_OK).then(() => true, () => false)
  ])
  return { rclone, fusermount, fuseDevice }
}

/** `rclone version`'s first word after "rclone", e.g. v1.60.1-DEV; null when it does not run. */
export async function rcloneVersion (rclone: string, home: string): Promise<string | null> {
  try {
    const { stdout } = await exec(rclone, ['version'], { env: { PATH: '/usr/bin:/bin', HOME: home }, timeout: 10_000, encoding: 'utf8' })
    const m = /^rclone\s+(\S+)/m.exec(stdout)
    return m === null ? null : m[1]
  } catch {
    return null
  }
}
