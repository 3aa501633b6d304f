import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { parseMountinfo } from '../../src/agent/mountinfo.ts'
import { allProcesses } from './proc.ts'
import { nowMs } from './stats.ts'

// Bare `rclone mount --daemon`: the baseline every control-plane number is compared with.
// rclone gets a minimal environment (no AWS_CA_BUNDLE, AWS_*, RCLONE_*, an own HOME), its
// config in a 0600 file, and each mount its own cache dir.

const exec = promisify(execFile)

export function rcloneEnv (home: string): Record<string, string> {
  return { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home }
}

export async function isMounted (dir: string): Promise<boolean> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8')).some(e => e.mountPoint === dir && e.fsType === 'fuse.rclone')
}

export interface BareMount {
  dir: string
  /** Milliseconds from starting `rclone mount --daemon` to the first successful listing. */
  mountMs: number
  /** Unmounts (fusermount3 -u) and waits for the daemon to exit; returns the milliseconds that took. */
  unmount: () => Promise<number>
}

async function daemonPids (dir: string): Promise<number[]> {
  return (await allProcesses()).filter(p => p.name === 'rclone' && p.argv.includes('mount') && p.argv.includes(dir)).map(p => p.pid)
}

async function alive (pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** Writes `config` to <work>/rclone.conf (0600) and returns its path. */
export async function writeRcloneConfig (work: string, config: string): Promise<string> {
  await mkdir(work, { recursive: true, mode: 0o700 })
  const file = path.join(work, 'rclone.conf')
  await writeFile(file, config, { mode: 0o600 })
  return file
}

export async function bareMount (remote: string, dir: string, opts: { configFile: string, work: string, readOnly?: boolean }): Promise<BareMount> {
  await mkdir(dir, { recursive: true })
  const home = path.join(opts.work, 'home')
  await mkdir(home, { recursive: true })
  const args = ['mount', remote, dir, '--config', opts.configFile, '--daemon', '--allow-other',
    '--cache-dir', path.join(opts.work, 'cache', path.basename(dir)), ...(opts.readOnly === false ? ['--vfs-cache-mode', 'writes'] : ['--read-only'])]
  const t0 = nowMs()
  try {
    await exec('rclone', args, { env: rcloneEnv(home), timeout: 90_000 })
  } catch (err) {
    await unmountDir(dir)
    throw new Error(`rclone mount ${remote} failed: ${(err as { stderr?: string }).stderr?.trim().split('\n').pop() ?? (err as Error).message}`)
  }
  const deadline = t0 + 30_000
  for (;;) {
    try {
      await readdir(dir)
      break
    } catch (err) {
      if (nowMs() > deadline) {
        await unmountDir(dir)
        throw new Error(`listing ${dir} kept failing: ${(err as Error).message}`)
      }
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  }
  const mountMs = nowMs() - t0
  return { dir, mountMs, unmount: async () => await unmountDir(dir) }
}

async function unmountDir (dir: string): Promise<number> {
  const pids = await daemonPids(dir)
  const t0 = nowMs()
  await exec('fusermount3', ['-u', dir]).catch(async () => await exec('fusermount3', ['-uz', dir]).catch(() => {}))
  const deadline = t0 + 15_000
  for (const pid of pids) {
    while (await alive(pid)) {
      if (nowMs() > deadline) {
        try { process.kill(pid, 'SIGKILL') } catch {}
        break
      }
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  }
  return nowMs() - t0
}

/** Lazily unmounts every rclone FUSE mount at or below `root` (cleanup after failures). */
export async function unmountUnder (root: string): Promise<void> {
  const entries = parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'))
  for (const e of entries.reverse()) {
    if (e.fsType === 'fuse.rclone' && (e.mountPoint === root || e.mountPoint.startsWith(root + '/'))) {
      await exec('fusermount3', ['-uz', e.mountPoint]).catch(() => {})
    }
  }
}

/** Kills rclone mount daemons serving a path below `root`. */
export async function killBareDaemons (root: string): Promise<void> {
  for (const p of await allProcesses()) {
    if (p.name === 'rclone' && p.argv.includes('mount') && p.argv.some(a => a.startsWith(root + '/'))) {
      try { process.kill(p.pid, 'SIGKILL') } catch {}
    }
  }
}
